//! compose.yaml without Docker: `scripts/check-compose.py` checks its
//! structure (services, profiles, dependencies, files, volumes, the
//! Dockerfile's health check), and every command it and the Dockerfile give
//! the image is accepted by the binary's argument parser.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lapor-bridge"))
}

#[test]
fn the_compose_file_is_sound_and_its_commands_exist() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{root}/scripts/check-compose.py"))
        .output()
        .expect("python3 (with PyYAML) runs scripts/check-compose.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let commands: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut checked = 0;
    for (service, command) in commands.as_object().unwrap() {
        let Some(args) = command.as_array() else {
            continue; // postgres: the image's own
        };
        let args: Vec<&str> = args.iter().map(|a| a.as_str().unwrap()).collect();
        let out = bin().args(&args).arg("--help").output().unwrap();
        assert!(
            out.status.success(),
            "{service}: lapor-bridge {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert_eq!(checked, 3);
    // The Dockerfile's health check and default command.
    for args in [&["healthcheck"][..], &["run"][..]] {
        let out = bin().args(args).arg("--help").output().unwrap();
        assert!(out.status.success(), "{args:?}");
    }
    // A command that does not exist is refused, so the check above means something.
    let out = bin()
        .args(["demo", "--port", "8080", "--help"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_compose_file_with_a_public_port_is_refused() {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!("{root}/compose.yaml")).unwrap();
    let bad = text.replace("\"127.0.0.1:8080:8080\"", "\"8080:8080\"");
    assert_ne!(bad, text);
    let path = std::env::temp_dir().join(format!("compose-{}.yaml", std::process::id()));
    std::fs::write(&path, bad).unwrap();
    let out = Command::new("python3")
        .arg(format!("{root}/scripts/check-compose.py"))
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback only"));
}

//! The expiry of an X.509 certificate, read from its DER without a parser
//! crate: `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version
//! OPTIONAL, serialNumber, signature, issuer, validity SEQUENCE { notBefore,
//! notAfter }, ... }, ... }` (RFC 5280, section 4.1).

use chrono::{DateTime, NaiveDateTime, Utc};

const SEQUENCE: u8 = 0x30;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// One DER element: its tag, its content and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn time(tag: u8, content: &[u8]) -> Option<DateTime<Utc>> {
    let text = std::str::from_utf8(content).ok()?;
    let text = text.strip_suffix('Z')?;
    let full = match tag {
        // RFC 5280: YY of 50 and more are 19YY.
        UTC_TIME if text.len() == 12 => {
            let yy: u32 = text[..2].parse().ok()?;
            format!("{}{text}", if yy >= 50 { "19" } else { "20" })
        }
        GENERALIZED_TIME if text.len() == 14 => text.to_string(),
        _ => return None,
    };
    NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

/// The certificate's `notAfter`; `None` when the DER is not a certificate.
pub fn not_after(der: &[u8]) -> Option<DateTime<Utc>> {
    let (SEQUENCE, certificate, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(certificate)? else {
        return None;
    };
    let (tag, _, mut rest) = element(tbs)?;
    if tag == VERSION {
        // The version came first: the serial number follows.
        (_, _, rest) = element(rest)?;
    }
    let (_signature, _, rest) = element(rest)?;
    let (_issuer, _, rest) = element(rest)?;
    let (SEQUENCE, validity, _) = element(rest)? else {
        return None;
    };
    let (_, _, after_not_before) = element(validity)?;
    let (tag, content, _) = element(after_not_before)?;
    time(tag, content)
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    fn der(pem_body: &str) -> Vec<u8> {
        let b64: String = pem_body.split_whitespace().collect();
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    }

    /// Self-signed, notAfter 2030-12-31 23:59:59 UTC (a UTCTime).
    const UNTIL_2030: &str = "
MIIBFjCBvqADAgECAgIQkjAKBggqhkjOPQQDAjAVMRMwEQYDVQQDDApsYXBvci50
ZXN0MB4XDTI1MDEwMTAwMDAwMFoXDTMwMTIzMTIzNTk1OVowFTETMBEGA1UEAwwK
bGFwb3IudGVzdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNmGwqh1ptFWqsma
0OYPC1aodl2dOeM/z9VTQAO5UzI22pEaquFatfs83/p7Krv/RHgGtm4fiIBxeyhR
5EkKJccwCgYIKoZIzj0EAwIDRwAwRAIgZ3j4hMHHqurLYMDEDPETHJCiCwbfxvaZ
vBNDEnZkXSsCIG4yzPMPbHLZqLao4SB3wWSZYTbhIrdwWs7M7vuVhRds";

    /// Self-signed, notAfter 2060-01-01 12:00:00 UTC (a GeneralizedTime).
    const UNTIL_2060: &str = "
MIIBGTCBwKADAgECAgIQkjAKBggqhkjOPQQDAjAVMRMwEQYDVQQDDApsYXBvci50
ZXN0MCAXDTI1MDEwMTAwMDAwMFoYDzIwNjAwMTAxMTIwMDAwWjAVMRMwEQYDVQQD
DApsYXBvci50ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAErJAGfviSex+c
n5YdP6A9Zrrr2sNzYr71rs7d6M7hg2fYlQnRQOTEe0pa2FfarNCyuY2dghsFCBjO
bsfZoCKodjAKBggqhkjOPQQDAgNIADBFAiA4SP23FhImAItH2yTa0SX2iLtdEeYS
WsAoH0fwTZg+WQIhAK3AiVj+5lwDnnhW43SUYXGRNPmprEXc0fuYjmT2ZYUo";

    #[test]
    fn not_after_is_read_from_utc_and_generalized_times() {
        assert_eq!(
            not_after(&der(UNTIL_2030)).unwrap().to_rfc3339(),
            "2030-12-31T23:59:59+00:00"
        );
        assert_eq!(
            not_after(&der(UNTIL_2060)).unwrap().to_rfc3339(),
            "2060-01-01T12:00:00+00:00"
        );
    }

    #[test]
    fn what_is_not_a_certificate_has_no_expiry() {
        let whole = der(UNTIL_2030);
        assert_eq!(not_after(&[]), None);
        assert_eq!(not_after(b"not a certificate"), None);
        for cut in [1, 10, 40, 80] {
            assert_eq!(not_after(&whole[..cut]), None, "cut at {cut}");
        }
    }
}

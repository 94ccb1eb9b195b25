//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the admin API,
//! built from [`super::api_routes`] (the list the router serves) and the
//! typed request and response structs of each handler's `#[utoipa::path]`.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa::OpenApi;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

use super::ApiRoute;
use crate::config::Role;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "lapor-bridge admin API",
        description = "The admin HTTP API of lapor-bridge: submit complaints and their follow-ups \
for delivery to SP4N-LAPOR!, track their sync state, act on the outbox, run pulls and \
reconciliations, export and verify the audit log.\n\n\
Authentication: `Authorization: Bearer <token>`. Each token has one role (`intake`, \
`operator`, `auditor`, `admin`); an admin token may call every route. Each operation \
names its roles in `x-roles` and in its description.\n\n\
Every error answers JSON `{\"error\": \"...\"}`; a `422` adds `fields`, each bad field with \
its problems. Every list answers `{\"items\", \"total\", \"page\", \"page_size\"}`.",
        license(name = "see the repository"),
    ),
    components(schemas(
        super::ErrorBody,
        crate::submit_document::SubmitDocument,
        crate::submit_document::SubmitReporter,
        crate::submit_document::SubmitAttachment,
        crate::status_document::StatusDocument,
        crate::status_document::Page<crate::status_document::StatusDocument>,
        crate::status_document::Page<crate::store::outbox::StepView>,
        crate::store::outbox::StepView,
        crate::sla::SlaView,
        crate::sla::Deadline,
        crate::sla::DeadlineKind,
        crate::pii::ReporterView,
        crate::pii::ReporterState,
        crate::store::audit::Verification,
        crate::actions::ErasureOutcome,
        super::handlers::FollowupBody,
        super::handlers::ForwardBody,
        super::handlers::EraseBody,
        super::handlers::Timeline,
    )),
    tags(
        (name = "complaints", description = "Submit, list and track complaints"),
        (name = "outbox", description = "Deliveries to LAPOR!: backlog, dead letters, retry, discard"),
        (name = "runs", description = "Pull from LAPOR! and reconciliation, now"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "health", description = "Liveness, readiness, metrics, this document"),
    )
)]
struct ApiDoc;

/// The name of the bearer security scheme in the document.
pub const BEARER: &str = "bearer";

/// The roles that may call a route: its own and admin.
pub fn roles_of(roles: &[Role]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = roles.iter().map(|r| r.as_str()).collect();
    if !roles.is_empty() && !roles.contains(&Role::Admin) {
        names.push(Role::Admin.as_str());
    }
    names
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

/// The document of `routes`.
pub fn document(routes: &[ApiRoute]) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An API token of the bridge (`[[tokens]]` by SHA-256, or BRIDGE_ADMIN_TOKEN).",
                ))
                .build(),
        ),
    );
    for route in routes {
        let mut operation = route.operation().clone();
        let roles = roles_of(route.roles);
        if roles.is_empty() {
            operation.security = Some(vec![SecurityRequirement::default()]);
        } else {
            operation.security = Some(vec![SecurityRequirement::new::<_, _, &str>(BEARER, [])]);
            let note = format!("Roles: {}.", roles.join(", "));
            operation.description = Some(match operation.description.take() {
                Some(d) if !d.is_empty() => format!("{d}\n\n{note}"),
                _ => note,
            });
            let responses = &mut operation.responses.responses;
            responses
                .entry("401".into())
                .or_insert_with(|| error_response("Missing or unknown token"));
            responses
                .entry("403".into())
                .or_insert_with(|| error_response("The token's role may not call this route"));
        }
        let extensions = ExtensionsBuilder::new()
            .add("x-roles", json!(roles))
            .build();
        match operation.extensions.as_mut() {
            Some(existing) => existing.merge(extensions),
            None => operation.extensions = Some(extensions),
        }
        doc.paths
            .add_path_operation(&route.path, route.methods.clone(), operation);
    }
    doc
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    document(&super::api_routes())
        .to_json()
        .unwrap_or_else(|e| {
            json!({"error": format!("cannot encode the document: {e}")}).to_string()
        })
});

/// The OpenAPI 3.1 document of this API
///
/// Needs no token.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)),
)]
pub async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}

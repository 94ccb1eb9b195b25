//! The layout and the small parts every page shares, in maud: values are
//! escaped by construction; only this module's fixed CSS is written raw.

use crate::domain::{StepState, SyncState};
use std::fmt::Write;

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::i18n::{K, Lang, t};
use super::session::Session;

/// Percent-encodes a query parameter value or a path segment.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The dashboard path of a complaint.
pub fn complaint_href(local_ref: &str) -> String {
    format!("/complaints/{}", url_encode(local_ref))
}

/// A time as operators read it: Western Indonesian Time.
pub fn when(at: DateTime<Utc>) -> String {
    at.with_timezone(&crate::time::wib())
        .format("%Y-%m-%d %H:%M:%S WIB")
        .to_string()
}

pub fn when_opt(at: Option<DateTime<Utc>>) -> String {
    at.map(when).unwrap_or_else(|| "—".into())
}

/// A coloured badge; `class` is one of this module's fixed CSS classes.
pub fn badge(class: &str, text: &str) -> Markup {
    html! { span class={ "badge " (class) } { (text) } }
}

/// The CSS class of a step state.
pub fn step_state_class(state: StepState) -> &'static str {
    match state {
        StepState::Done => "ok",
        StepState::Pending | StepState::Running => "wait",
        StepState::Dead => "bad",
        StepState::Discarded => "muted",
    }
}

/// The CSS class of a sync state.
pub fn sync_state_class(state: SyncState) -> &'static str {
    match state {
        SyncState::Synced => "ok",
        SyncState::Pending | SyncState::Retrying => "wait",
        SyncState::Dead | SyncState::Conflict => "bad",
    }
}

/// A hidden CSRF field for a form of this session.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Complaints,
    Dead,
    Reconciliation,
    Audit,
    None,
}

const CSS: &str = "
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2733;background:#f4f6f9}
header{background:#14365d;color:#fff}
nav{display:flex;flex-wrap:wrap;align-items:center;gap:.25rem 1rem;max-width:1200px;margin:0 auto;padding:.6rem 1rem}
nav a{color:#dce7f5;text-decoration:none;padding:.25rem .1rem;border-bottom:2px solid transparent}
nav a:hover{color:#fff}
nav a.active{color:#fff;border-bottom-color:#f5b82e}
nav .brand{font-weight:700;color:#fff;margin-right:.75rem}
nav .spacer{flex:1}
nav .who{color:#b9c9de;font-size:.9em}
nav form{margin:0}
nav button{background:transparent;color:#fff;border:1px solid #7f9cc0;border-radius:4px;padding:.2rem .6rem;cursor:pointer}
main{max-width:1200px;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px rgba(0,0,0,.08)}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #e3e8ef;vertical-align:top;overflow-wrap:anywhere}
th{background:#eef2f7;font-weight:600;font-size:.9em}
td.num,th.num{text-align:right}
table.kv th{width:38%}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:.75rem}
.card{background:#fff;border-radius:6px;padding:.75rem 1rem;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card .label{color:#5b6b7f;font-size:.85em}
.card .value{font-size:1.6rem;font-weight:600}
.card .value a{color:#14365d;text-decoration:none}
.card .value a:hover{text-decoration:underline}
.card .sub{color:#5b6b7f;font-size:.85em}
.card.alert{border-left:4px solid #c62828}
.badge{display:inline-block;padding:0 .45rem;border-radius:999px;font-size:.85em;font-weight:600;white-space:nowrap}
.ref{white-space:nowrap;overflow-wrap:normal}
.badge.ok{background:#dcf3e2;color:#1b6b34}
.badge.wait{background:#fff2cc;color:#7a5a00}
.badge.bad{background:#fbdcdc;color:#a12020}
.badge.muted{background:#e6eaf0;color:#4b5a6b}
.flash{padding:.6rem .9rem;border-radius:6px;margin:0 0 1rem;background:#e3f0ff;border:1px solid #9cc3f0}
.flash.bad{background:#fde8e8;border-color:#f0a5a5}
.error{color:#a12020}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:end;background:#fff;padding:.75rem;border-radius:6px;margin-bottom:1rem;box-shadow:0 1px 2px rgba(0,0,0,.08)}
label{display:flex;flex-direction:column;font-size:.85em;color:#44536a;gap:.2rem}
input,select{font:inherit;padding:.3rem .45rem;border:1px solid #b8c3d1;border-radius:4px;background:#fff;max-width:100%}
button{font:inherit;padding:.3rem .8rem;border-radius:4px;border:1px solid #14365d;background:#14365d;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#14365d}
button.danger{background:#fff;color:#a12020;border-color:#a12020}
form.inline{display:inline;margin:0}
label.inline-confirm{display:inline-flex;flex-direction:row;color:#a12020;margin-right:.3rem}
.pager{display:flex;gap:1rem;align-items:center;margin:.75rem 0}
.muted{color:#5b6b7f}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85em;word-break:break-all}
.login{max-width:420px;margin:4rem auto;background:#fff;padding:1.5rem;border-radius:8px;box-shadow:0 2px 8px rgba(0,0,0,.1)}
.login form{display:flex;flex-direction:column;gap:.75rem}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(420px,100%),1fr));gap:0 1.25rem;align-items:start}
.cols>div{min-width:0}
.cols h2:first-child{margin-top:0}
.content{white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;padding:.75rem;border-radius:6px}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:.3rem 0}
details summary{cursor:pointer;color:#14365d}
ul.changes{margin:0;padding-left:1.1rem}
.confirm{background:#fff;padding:1rem;border-radius:6px;border-left:4px solid #a12020;max-width:40rem}
/* Phone width: wide tables scroll inside their own box, never the page. */
@media (max-width:760px){
  main{padding:.6rem}
  table:not(.kv){display:block;overflow-x:auto;max-width:100%}
  table.kv th{width:auto}
  nav{gap:.25rem .6rem}
  .card .value{font-size:1.3rem}
}
";

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · lapor-bridge" }
            style { (PreEscaped(CSS)) }
        }
    }
}

/// What the layout needs to know about the page being drawn.
pub struct Frame<'a> {
    pub lang: Lang,
    pub session: Option<&'a Session>,
    /// The link to this page in the other language.
    pub switch_href: String,
    pub active: Nav,
}

/// The navigation of a signed-in page.
fn nav_links(frame: &Frame<'_>, session: &Session) -> Markup {
    let lang = frame.lang;
    html! {
        @for (nav, href, key) in [
            (Nav::Overview, "/", K::NavOverview),
            (Nav::Complaints, "/complaints", K::NavComplaints),
            (Nav::Dead, "/outbox/dead", K::NavDead),
            (Nav::Reconciliation, "/reconciliation", K::NavReconciliation),
            (Nav::Audit, "/audit", K::NavAudit),
        ] {
            a href=(href) class=[(nav == frame.active).then_some("active")] { (t(lang, key)) }
        }
        span.spacer {}
        span.who #who {
            (t(lang, K::SignedInAs)) ": " (session.token_name) " (" (session.role.as_str()) ")"
        }
        a href=(frame.switch_href) #lang-switch { (t(lang, K::SwitchLang)) }
        form method="post" action="/logout" {
            (csrf_field(session))
            button type="submit" #logout { (t(lang, K::Logout)) }
        }
    }
}

/// A full page: navigation, title, then `body`.
pub fn page(frame: &Frame<'_>, title: &str, body: Markup) -> Markup {
    let lang = frame.lang;
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head(title))
            body {
                header { nav {
                    a.brand href="/" { "lapor-bridge" }
                    @if let Some(session) = frame.session {
                        (nav_links(frame, session))
                    } @else {
                        span.spacer {}
                        a href=(frame.switch_href) #lang-switch { (t(lang, K::SwitchLang)) }
                    }
                } }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The login page (no navigation).
pub fn login_page(lang: Lang, switch_href: &str, error: Option<K>) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head(t(lang, K::LoginTitle)))
            body { div.login {
                h1 { (t(lang, K::LoginTitle)) }
                @if let Some(k) = error {
                    p.error #login-error { (t(lang, k)) }
                }
                form method="post" action="/login" {
                    label for="token" {
                        (t(lang, K::LoginToken))
                        input type="password" #token name="token"
                            autocomplete="current-password" required autofocus;
                    }
                    button type="submit" #login-submit { (t(lang, K::LoginSubmit)) }
                }
                p.muted { (t(lang, K::LoginHelp)) }
                p { a href=(switch_href) #lang-switch { (t(lang, K::SwitchLang)) } }
            } }
        }
    }
}

/// Previous/next links. `base` is the page's path with its filters as a
/// query string (already encoded), without `page`.
pub fn pager(lang: Lang, base: &str, page: i64, page_size: i64, total: i64) -> Markup {
    let pages = ((total + page_size - 1) / page_size).max(1);
    let sep = if base.contains('?') { '&' } else { '?' };
    html! {
        div.pager {
            @if page > 1 {
                a href={ (base) (sep) "page=" (page - 1) } rel="prev" { "← " (t(lang, K::Previous)) }
            }
            span.muted {
                (t(lang, K::Page)) " " (page) " " (t(lang, K::Of)) " " (pages) " · " (total)
            }
            @if page < pages {
                a href={ (base) (sep) "page=" (page + 1) } rel="next" { (t(lang, K::Next)) " →" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_by_construction() {
        assert_eq!(
            badge("bad", r#"<script>alert("x")</script> & 'y'"#).into_string(),
            "<span class=\"badge bad\">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; 'y'</span>"
        );
    }

    #[test]
    fn url_encoding_keeps_only_unreserved_bytes() {
        assert_eq!(url_encode("PLG 1/2&x=é"), "PLG%201%2F2%26x%3D%C3%A9");
    }
}

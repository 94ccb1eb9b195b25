//! Request parameters, read the same way by the admin API, the dashboard and
//! the CLI: query strings checked against what a route takes (unknown names,
//! names given twice and NUL characters are refused, naming them), page
//! numbers and sizes within their ranges, and instants.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{DeserializeOwned, Visitor};

/// Items a page when a list is not told otherwise.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// The largest `page_size` a list accepts.
pub const MAX_PAGE_SIZE: i64 = 500;
/// The highest `page` a list accepts (with 500 a page, half a billion items).
pub const MAX_PAGE: i64 = 1_000_000;

/// What is wrong with a request's parameters, by parameter name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamErrors(pub BTreeMap<String, Vec<String>>);

impl ParamErrors {
    pub fn add(&mut self, name: &str, problem: impl Into<String>) {
        self.0
            .entry(name.to_string())
            .or_default()
            .push(problem.into());
    }

    pub fn one(name: &str, problem: impl Into<String>) -> Self {
        let mut e = Self::default();
        e.add(name, problem);
        e
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names, comma-separated.
    pub fn names(&self) -> String {
        self.0.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    fn into_result(self) -> Result<(), Self> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for ParamErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(name, problems)| format!("{name}: {}", problems.join("; ")))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for ParamErrors {}

/// One page of a list: 1-based `page`, `size` items, `offset` rows skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub page: i64,
    pub size: i64,
    pub offset: i64,
}

impl Paging {
    /// The first page of `size` items.
    pub fn first(size: i64) -> Self {
        Self {
            page: 1,
            size,
            offset: 0,
        }
    }
}

/// `page` (1 to [`MAX_PAGE`], default 1) and `page_size` (1 to
/// [`MAX_PAGE_SIZE`], default `default_size`); a value out of range is an
/// error naming it, never clamped or wrapped.
pub fn paging(
    page: Option<i64>,
    page_size: Option<i64>,
    default_size: i64,
) -> Result<Paging, ParamErrors> {
    let mut errors = ParamErrors::default();
    let page = page.unwrap_or(1);
    if !(1..=MAX_PAGE).contains(&page) {
        errors.add(
            "page",
            format!("must be a whole number from 1 to {MAX_PAGE}"),
        );
    }
    let size = page_size.unwrap_or(default_size);
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        errors.add(
            "page_size",
            format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
        );
    }
    errors.into_result()?;
    Ok(Paging {
        page,
        size,
        offset: (page - 1) * size,
    })
}

/// A `page` given as text (the dashboard's links): absent or empty is page 1.
pub fn page_from_text(raw: Option<&str>, size: i64) -> Result<Paging, ParamErrors> {
    let page = match raw.map(str::trim).filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => Some(r.parse::<i64>().map_err(|_| {
            ParamErrors::one(
                "page",
                format!("must be a whole number from 1 to {MAX_PAGE}"),
            )
        })?),
    };
    paging(page, Some(size), size)
}

/// Checks a query's pairs: every name one that `known` lists (`None`: any
/// name), none given twice, no NUL character in a name or value.
pub fn check_pairs<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    known: Option<&[&str]>,
) -> Result<(), ParamErrors> {
    let mut errors = ParamErrors::default();
    let mut seen = std::collections::BTreeSet::new();
    for (name, value) in pairs {
        if name.contains('\0') {
            errors.add("(name)", "must not contain a NUL character");
            continue;
        }
        if let Some(known) = known
            && !known.contains(&name)
        {
            let takes = if known.is_empty() {
                "this route takes no query parameters".to_string()
            } else {
                format!("this route takes {}", known.join(", "))
            };
            errors.add(name, format!("unknown query parameter; {takes}"));
            continue;
        }
        if !seen.insert(name) {
            errors.add(name, "given more than once");
        }
        if value.contains('\0') {
            errors.add(name, "must not contain a NUL character");
        }
    }
    errors.into_result()
}

/// A query string as `T` (a struct deriving `Deserialize`): its pairs are
/// checked against `T`'s fields first (see [`check_pairs`]), then a value
/// that does not parse is named.
pub fn query<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, ParamErrors> {
    let raw = raw.unwrap_or_default();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect();
    check_pairs(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        struct_fields::<T>(),
    )?;
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let name = if path == "." { "query" } else { path.as_str() };
        ParamErrors::one(name, e.inner().to_string())
    })
}

/// The field names of a struct that derives `Deserialize` (`None` for a type
/// that is not a plain struct, whose names are then not checked): serde
/// hands them to the deserializer, which here asks for nothing else.
pub fn struct_fields<T: DeserializeOwned>() -> Option<&'static [&'static str]> {
    match T::deserialize(FieldProbe) {
        Err(Probed(fields)) => fields,
        Ok(_) => None,
    }
}

struct FieldProbe;

#[derive(Debug)]
struct Probed(Option<&'static [&'static str]>);

impl fmt::Display for Probed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field probe")
    }
}

impl std::error::Error for Probed {}

impl serde::de::Error for Probed {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Probed(None)
    }
}

impl<'de> serde::Deserializer<'de> for FieldProbe {
    type Error = Probed;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Probed> {
        Err(Probed(None))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Probed> {
        Err(Probed(Some(fields)))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
        enum identifier ignored_any
    }
}

/// An instant from a parameter: RFC 3339, or a date `YYYY-MM-DD` (midnight
/// UTC). Empty or absent: `None`.
pub fn parse_instant(field: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, String> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()));
    }
    Err(format!(
        "{field} must be an RFC 3339 time or a date YYYY-MM-DD (UTC), got {raw:?}"
    ))
}

/// A code parameter (`?state=`, `?sync_state=`) as its domain type. Empty or
/// absent: `None`; a code the type does not know: `problem` under `name`.
pub fn parse_code<T: std::str::FromStr>(
    name: &str,
    raw: Option<&str>,
    problem: impl FnOnce() -> String,
) -> Result<Option<T>, ParamErrors> {
    match raw.filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(raw) => raw
            .parse()
            .map(Some)
            .map_err(|_| ParamErrors::one(name, problem())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn codes_parse_into_their_type() {
        use crate::domain::StepState;
        let problem = || "must be a step state".to_string();
        assert_eq!(parse_code::<StepState>("state", None, problem), Ok(None));
        assert_eq!(
            parse_code::<StepState>("state", Some(""), problem),
            Ok(None)
        );
        assert_eq!(
            parse_code("state", Some("dead"), problem),
            Ok(Some(StepState::Dead))
        );
        assert_eq!(
            parse_code::<StepState>("state", Some("Dead"), problem),
            Err(ParamErrors::one("state", "must be a step state"))
        );
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct ListQuery {
        state: Option<String>,
        page: Option<i64>,
        page_size: Option<i64>,
    }

    #[derive(Debug, Deserialize)]
    struct NoQuery {}

    #[test]
    fn struct_fields_are_read_from_serde() {
        assert_eq!(
            struct_fields::<ListQuery>(),
            Some(&["state", "page", "page_size"][..])
        );
        assert_eq!(struct_fields::<NoQuery>(), Some(&[][..]));
        assert_eq!(
            struct_fields::<std::collections::HashMap<String, String>>(),
            None
        );
    }

    #[test]
    fn unknown_repeated_and_nul_parameters_are_named() {
        let e = query::<ListQuery>(Some("state=dead&sort=id&limit=5")).unwrap_err();
        assert_eq!(e.names(), "limit, sort");
        let e = query::<ListQuery>(Some("page=1&page=2")).unwrap_err();
        assert_eq!(e.names(), "page");
        let e = query::<ListQuery>(Some("state=de%00ad")).unwrap_err();
        assert_eq!(e.names(), "state");
        let e = query::<NoQuery>(Some("x=1")).unwrap_err();
        assert!(e.to_string().contains("takes no query parameters"), "{e}");
        assert!(query::<NoQuery>(None).is_ok());
        assert!(query::<NoQuery>(Some("")).is_ok());
    }

    #[test]
    fn values_that_do_not_parse_name_their_parameter() {
        let e = query::<ListQuery>(Some("page=99999999999999999999")).unwrap_err();
        assert_eq!(e.names(), "page");
        let e = query::<ListQuery>(Some("page_size=ten")).unwrap_err();
        assert_eq!(e.names(), "page_size");
        let q = query::<ListQuery>(Some("page=2&page_size=10")).unwrap();
        assert_eq!((q.page, q.page_size), (Some(2), Some(10)));
    }

    #[test]
    fn pages_out_of_range_are_refused_not_clamped() {
        assert_eq!(
            paging(None, None, 50).unwrap(),
            Paging {
                page: 1,
                size: 50,
                offset: 0
            }
        );
        assert_eq!(paging(Some(3), Some(20), 50).unwrap().offset, 40);
        assert_eq!(paging(Some(0), None, 50).unwrap_err().names(), "page");
        assert_eq!(
            paging(Some(i64::MAX), Some(500), 50).unwrap_err().names(),
            "page"
        );
        assert_eq!(
            paging(Some(-1), Some(0), 50).unwrap_err().names(),
            "page, page_size"
        );
        assert_eq!(
            paging(None, Some(501), 50).unwrap_err().names(),
            "page_size"
        );
        assert_eq!(
            paging(Some(MAX_PAGE), Some(MAX_PAGE_SIZE), 50)
                .unwrap()
                .offset,
            (MAX_PAGE - 1) * MAX_PAGE_SIZE
        );
        assert_eq!(page_from_text(Some(""), 50).unwrap().page, 1);
        assert_eq!(page_from_text(Some("2"), 50).unwrap().offset, 50);
        assert!(page_from_text(Some("x"), 50).is_err());
        assert!(page_from_text(Some("99999999999999999999"), 50).is_err());
    }
}

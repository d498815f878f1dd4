//! Where a store lives: parsing store URLs, and keeping passwords out of messages.

use std::path::PathBuf;

use super::StoreError;

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// A SQLite database file (created, with its directory, if missing).
    SqliteFile(PathBuf),
    /// A private in-memory SQLite database (tests).
    SqliteMemory,
    /// A PostgreSQL server; the URL as given.
    Postgres(String),
}

/// Reads a store URL:
///
/// - `postgres://…`, `postgresql://…`: PostgreSQL (the driver parses the rest);
/// - `sqlite::memory:`, `sqlite://:memory:`, `:memory:`: an in-memory SQLite database;
/// - `sqlite://PATH`, `sqlite:PATH`: a SQLite file (`sqlite:///abs/path` is absolute);
/// - anything else that does not start with a URL scheme: a SQLite file path.
///
/// A string that starts like a URL with another scheme (`mysql://…`, a typo such as
/// `postgress://…`, `mysql:db`) is refused rather than taken as a file name: a mistyped URL
/// should fail loudly, not create a stray database. A file whose name looks like that can still
/// be given as `./mysql:db`.
pub(crate) fn parse(url: &str) -> Result<Location, StoreError> {
    let refuse = |reason: &str| StoreError::InvalidUrl {
        url: redact(url),
        reason: reason.to_owned(),
    };
    if url.trim().is_empty() {
        return Err(refuse("it is empty"));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Location::Postgres(url.to_owned()));
    }
    if matches!(url, "sqlite::memory:" | "sqlite://:memory:" | ":memory:") {
        return Ok(Location::SqliteMemory);
    }
    if let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if rest.is_empty() {
            return Err(refuse("it names no database file"));
        }
        if rest.contains('?') {
            return Err(refuse(
                "query parameters are not supported; Switchboard sets the SQLite options itself",
            ));
        }
        return Ok(Location::SqliteFile(PathBuf::from(rest)));
    }
    if let Some(scheme) = url_scheme(url) {
        return Err(refuse(&format!(
            "scheme {scheme:?} is not supported (prefix the path with ./ if it really is a file)"
        )));
    }
    Ok(Location::SqliteFile(PathBuf::from(url)))
}

/// The scheme of `url` if it starts like a URL (`letters:`), ignoring one-letter Windows drives.
fn url_scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let is_scheme = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && scheme.len() > 1;
    is_scheme.then_some(scheme)
}

/// `url` with any password replaced by `***`, in the user-info part and in a `password=`
/// query parameter, so that it can be logged and put in error messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_locations() {
        let file = |p: &str| Some(Location::SqliteFile(PathBuf::from(p)));
        assert_eq!(parse("sqlite://data/sb.db").ok(), file("data/sb.db"));
        assert_eq!(
            parse("sqlite:///var/lib/sb.db").ok(),
            file("/var/lib/sb.db")
        );
        assert_eq!(parse("sqlite:sb.db").ok(), file("sb.db"));
        assert_eq!(parse("/var/lib/sb.db").ok(), file("/var/lib/sb.db"));
        assert_eq!(parse("./mysql:db").ok(), file("./mysql:db"));
        assert_eq!(parse(r"C:\sb\sb.db").ok(), file(r"C:\sb\sb.db"));
        assert_eq!(parse("sqlite::memory:").ok(), Some(Location::SqliteMemory));
    }

    #[test]
    fn postgres_locations_are_kept_whole() {
        let url = "postgresql://u:p@db.example:5433/sb?sslmode=disable";
        assert_eq!(parse(url).ok(), Some(Location::Postgres(url.to_owned())));
    }

    #[test]
    fn mistyped_urls_are_refused_not_taken_as_files() {
        for url in [
            "",
            "  ",
            "mysql://h/db",
            "postgress://h/db",
            "mysql:db",
            "sqlite://",
        ] {
            assert!(
                matches!(parse(url), Err(StoreError::InvalidUrl { .. })),
                "{url:?}"
            );
        }
        assert!(matches!(
            parse("sqlite://sb.db?mode=ro"),
            Err(StoreError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://sb:s3cr@t@db:5432/sb"),
            "postgres://sb:***@db:5432/sb"
        );
        assert_eq!(
            redact("postgres://db/sb?user=sb&password=s3cret&sslmode=require"),
            "postgres://db/sb?user=sb&password=***&sslmode=require"
        );
        assert_eq!(redact("postgres://sb@db/sb"), "postgres://sb@db/sb");
        assert_eq!(redact("sqlite:sb.db"), "sqlite:sb.db");
    }
}

//! Reading a result row's columns by name, whichever driver returned it: the rows of the hot
//! read come from rusqlite on SQLite ([`super::inline`]) and from sqlx everywhere else, and
//! one mapping function per table serves both.

use sqlx::Row;
use sqlx::any::AnyRow;

/// The column types the repositories read.
pub(crate) trait Columns {
    /// A non-null text column.
    fn text(&self, col: &str) -> Result<String, sqlx::Error>;
    /// A text column that may be NULL.
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    /// A non-null integer column.
    fn int(&self, col: &str) -> Result<i64, sqlx::Error>;
    /// An integer column that may be NULL.
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error>;
}

impl Columns for AnyRow {
    fn text(&self, col: &str) -> Result<String, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(col)
    }
    fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(col)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, col: &str) -> Result<String, sqlx::Error> {
        self.get(col).map_err(|e| decode(col, e))
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
        self.get(col).map_err(|e| decode(col, e))
    }
    fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
        self.get(col).map_err(|e| decode(col, e))
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
        self.get(col).map_err(|e| decode(col, e))
    }
}

/// A rusqlite column error as the error sqlx gives for the same fault.
fn decode(col: &str, e: rusqlite::Error) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: col.to_string(),
        source: Box::new(e),
    }
}

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

/// A rusqlite row with its statement's column names fetched once. rusqlite finds a column by
/// name by asking SQLite for each column's name in turn and comparing it case-insensitively:
/// for the hot read's twenty columns that was 2 % of a loaded server's CPU.
pub(crate) struct InlineRow<'a> {
    row: &'a rusqlite::Row<'a>,
    names: Vec<&'a str>,
}

impl<'a> InlineRow<'a> {
    pub(crate) fn new(row: &'a rusqlite::Row<'a>) -> Self {
        let statement = row.as_ref();
        let names = (0..statement.column_count())
            .map(|i| statement.column_name(i).unwrap_or(""))
            .collect();
        InlineRow { row, names }
    }

    fn get<T: rusqlite::types::FromSql>(&self, col: &str) -> Result<T, sqlx::Error> {
        let index = self
            .names
            .iter()
            .position(|name| *name == col)
            .ok_or_else(|| sqlx::Error::ColumnNotFound(col.to_string()))?;
        self.row.get(index).map_err(|e| decode(col, e))
    }
}

impl Columns for InlineRow<'_> {
    fn text(&self, col: &str) -> Result<String, sqlx::Error> {
        self.get(col)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
        self.get(col)
    }
    fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
        self.get(col)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
        self.get(col)
    }
}

/// A rusqlite column error as the error sqlx gives for the same fault.
fn decode(col: &str, e: rusqlite::Error) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: col.to_string(),
        source: Box::new(e),
    }
}

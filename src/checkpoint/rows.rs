//! One way to read and write a table's rows: each row type names its table and columns once
//! ([`Record`]), as plain values, and each backend builds its reads and writes from them (the
//! SQLite file its SELECT and upsert here), so adding a column is one edit in one place.

use rusqlite::types::{FromSqlError, Value};
use rusqlite::{OptionalExtension, Row};

use super::store::Store;
use crate::error::Result;

/// A row kept per ferry table (column `tbl`), plus `KEY` more key columns.
pub(super) trait Record: Sized {
    const TABLE: &'static str;
    /// The columns after `tbl`, in the order `from_values` reads them and `values` gives them;
    /// the first `KEY` of them complete the primary key and order the rows.
    const COLUMNS: &'static [&'static str];
    const KEY: usize;
    /// From one value per column (`Null` for an absent one).
    fn from_values(v: &[Value]) -> Result<Self, FromSqlError>;
    fn values(&self) -> Vec<Value>;
}

/// A SQLite row of `R`'s columns as `R`.
fn from_row<R: Record>(r: &Row) -> rusqlite::Result<R> {
    let values = (0..R::COLUMNS.len())
        .map(|i| r.get(i))
        .collect::<rusqlite::Result<Vec<Value>>>()?;
    R::from_values(&values)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Null, e.into()))
}

/// `record!(Row in "table", key N: field, ...; extra "column" = value)`: a [`Record`] whose columns
/// are its fields, by the same names and in that order, plus write-only extra columns.
macro_rules! record {
    ($ty:ident in $table:literal, key $key:literal: $($field:ident),+ $(; extra $col:literal = $val:expr)?) => {
        impl $crate::checkpoint::rows::Record for $ty {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),+ $(, $col)?];
            const KEY: usize = $key;
            fn from_values(v: &[rusqlite::types::Value]) -> Result<Self, rusqlite::types::FromSqlError> {
                use rusqlite::types::{FromSql, ValueRef};
                let mut column = 0;
                Ok($ty { $($field: { column += 1; FromSql::column_result(ValueRef::from(&v[column - 1]))? }),+ })
            }
            fn values(&self) -> Vec<rusqlite::types::Value> {
                vec![$(self.$field.clone().into()),+ $(, $val.into())?]
            }
        }
    };
}
pub(super) use record;

fn select<R: Record>() -> String {
    let order = match R::COLUMNS[..R::KEY].join(", ") {
        o if o.is_empty() => String::new(),
        o => format!(" ORDER BY {o}"),
    };
    format!(
        "SELECT {} FROM {} WHERE tbl = ?1{order}",
        R::COLUMNS.join(", "),
        R::TABLE
    )
}

fn upsert<R: Record>() -> String {
    let marks: Vec<String> = (1..=R::COLUMNS.len() + 1).map(|i| format!("?{i}")).collect();
    let key = std::iter::once("tbl").chain(R::COLUMNS[..R::KEY].iter().copied());
    let set: Vec<String> = R::COLUMNS[R::KEY..]
        .iter()
        .map(|c| format!("{c}=excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO {} (tbl, {}) VALUES ({}) ON CONFLICT({}) DO UPDATE SET {}",
        R::TABLE,
        R::COLUMNS.join(", "),
        marks.join(","),
        key.collect::<Vec<_>>().join(", "),
        set.join(", ")
    )
}

impl Store {
    /// The one row of `table` (a record without more key columns).
    pub(super) fn row<R: Record>(&self, table: &str) -> Result<Option<R>> {
        self.with(|c| c.query_row(&select::<R>(), [table], from_row::<R>).optional())
    }

    /// All rows of `table`, in key order.
    pub(super) fn rows<R: Record>(&self, table: &str) -> Result<Vec<R>> {
        self.with(|c| {
            c.prepare_cached(&select::<R>())?
                .query_map([table], from_row::<R>)?
                .collect()
        })
    }

    /// Writes rows of `table` in one transaction.
    pub(super) fn put_rows<R: Record>(&self, table: &str, rows: &[R]) -> Result<()> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare_cached(&upsert::<R>())?;
            for row in rows {
                let mut values = vec![Value::Text(table.to_string())];
                values.extend(row.values());
                st.execute(rusqlite::params_from_iter(values))?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

//! A reviewable migration plan: `ferry discover` writes it from the source, a person edits it,
//! `ferry plan` checks it and says what `ferry sync --plan` would do, and `sync` follows it.
//!
//! ```text
//! plan/tables.csv            one row per source table; edit `move` and `destination`
//! plan/schemas/<table>.json  how to rebuild each table (CreateTable's field names), in the shape
//!                            the config's transform gives the destination
//! plan/lambda-map.csv        one row per event source mapping; edit `destination_function`/`action`
//! plan/ferry.toml            the config with a [[table]] list for the plan, for `ferry sync -c`
//! ```

mod consumers;
pub mod discover;
pub mod lambda;
pub mod lambda_map;
pub mod preview;

pub mod restore;
pub mod schema;
pub mod tables_csv;
pub mod toml_out;
pub mod validate;

pub use lambda::enable_mappings;
pub use validate::{Plan, PlannedTable};

/// Problems found in a plan, each naming its file and line; all are reported at once.
#[derive(Debug, Default)]
pub struct Problems {
    pub list: Vec<String>,
}

impl Problems {
    pub fn push(&mut self, p: String) {
        self.list.push(p);
    }
}

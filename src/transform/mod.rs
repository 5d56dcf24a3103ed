//! Transforms on the way: what the destination holds is a function of the source item.
//!
//! ```text
//!  source item ─▶ filter? ──no──▶ (stream, read-through, repair) delete the key at the destination
//!                    │                (bulk load) write nothing
//!                    yes
//!                    ▼
//!                  drop ─▶ rename ─▶ set ─▶ destination item
//! ```
//!
//! Every path that writes reaches the destination through one place, the apply lane
//! ([`crate::apply`]), which shapes each change with [`Transform::shape`] after coalescing; and
//! `verify` reads the source through the same [`Transform`]. So the scan, ferry's export loader,
//! the stream, SQS, read-through, verify and repair cannot disagree about what an item becomes.
//!
//! Why batching stays correct: a transform never changes a key's value, only the key attributes'
//! names, so a change keeps its identity ([`crate::item::KeyBytes`]) and its lane; and the last
//! change of a key decides the result whether it is shaped before or after coalescing.
//!
//! Paths are named as in the source item (the filter and `drop` see the source's names; `rename`
//! maps source names to destination names; `set` names destination attributes).

pub mod check;
mod expr;
mod fast;
pub mod filter;
pub mod path;

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;

pub use filter::Filter;
use path::Blocked;
pub use path::Path;
use smallvec::SmallVec;

use crate::item::Item;

/// A value and where the config wrote it (`ferry.toml:12:5`), for errors found later.
#[derive(Debug, Clone, PartialEq)]
pub struct At<T> {
    pub value: T,
    pub at: String,
}

/// A table's transform as configured, its filter compiled.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub rename: Vec<(At<Path>, Path)>,
    pub drop: Vec<At<Path>>,
    pub set: Vec<(At<Path>, AttributeValue)>,
    pub filter: Option<At<Arc<Filter>>>,
}

impl Spec {
    pub fn is_empty(&self) -> bool {
        self.rename.is_empty() && self.drop.is_empty() && self.set.is_empty() && self.filter.is_none()
    }

    /// The destination's name of a top-level source attribute.
    pub fn renamed<'a>(&'a self, name: &'a str) -> &'a str {
        self.rename
            .iter()
            .find(|(from, _)| from.value.is_top() && from.value.root() == name)
            .map_or(name, |(_, to)| to.root())
    }

    /// One line per step, for `ferry discover`/`plan` and the logs.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(f) = &self.filter {
            out.push(format!("filter {}", f.value.source));
        }
        for d in &self.drop {
            out.push(format!("drop {}", d.value));
        }
        for (from, to) in &self.rename {
            out.push(format!("rename {} → {to}", from.value));
        }
        for (p, v) in &self.set {
            out.push(format!("set {p} = {}", crate::item::json::to_json(v), p = p.value));
        }
        out
    }
}

/// What a change becomes at the destination.
#[derive(Debug, Clone, PartialEq)]
pub enum Shaped {
    Put(Item),
    /// Holds the destination's key attributes.
    Delete(Item),
    /// Nothing to write (a bulk-loaded item outside the filter).
    Skip,
}

/// A table's transform, ready to run: the spec and the table's key names on both sides.
pub struct Transform {
    spec: Spec,
    source_keys: Arc<[String]>,
    dest_keys: Arc<[String]>,
    /// Top-level key renames (source name, destination name).
    key_renames: Vec<(String, String)>,
}

impl Transform {
    /// A transform for a table keyed by `source_keys`; the spec is assumed checked against the
    /// table ([`check::against_table`]).
    pub fn new(spec: Spec, source_keys: Arc<[String]>) -> Transform {
        let dest_keys: Arc<[String]> = source_keys.iter().map(|k| spec.renamed(k).to_string()).collect();
        let key_renames = source_keys
            .iter()
            .zip(dest_keys.iter())
            .filter(|(a, b)| a != b)
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect();
        Transform {
            spec,
            source_keys,
            dest_keys,
            key_renames,
        }
    }

    /// Copies items unchanged.
    pub fn identity(keys: Arc<[String]>) -> Transform {
        Transform::new(Spec::default(), keys)
    }

    pub fn is_identity(&self) -> bool {
        self.spec.is_empty()
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub fn source_keys(&self) -> &Arc<[String]> {
        &self.source_keys
    }

    /// The destination's key attribute names, hash key first.
    pub fn dest_keys(&self) -> &Arc<[String]> {
        &self.dest_keys
    }

    /// The destination's item for a source item; `None` when the filter leaves it out. An `Err`
    /// says why this item cannot be transformed (the caller names the key).
    pub fn item(&self, item: Item) -> Result<Option<Item>, String> {
        if !self.passes(&item)? {
            return Ok(None);
        }
        self.reshape(item).map(Some)
    }

    /// Whether the filter keeps `item` (true without a filter).
    fn passes(&self, item: &Item) -> Result<bool, String> {
        match &self.spec.filter {
            Some(f) => f.value.matches(item),
            None => Ok(true),
        }
    }

    /// Drop, rename, set: the destination's item for a source item the filter keeps.
    fn reshape(&self, mut item: Item) -> Result<Item, String> {
        for d in &self.spec.drop {
            d.value.take(&mut item);
        }
        // All taken before any is put, so renames can swap names.
        let moved: SmallVec<[_; 8]> = self
            .spec
            .rename
            .iter()
            .filter_map(|(from, to)| from.value.take(&mut item).map(|v| (from, to, v)))
            .collect();
        for (from, to, v) in moved {
            to.put_new(&mut item, v).map_err(|why| match why {
                Blocked::Taken => format!(
                    "renaming {} onto {to}: the item already has {to} (drop it first if it should go)",
                    from.value
                ),
                Blocked::NotAMap => format!("renaming {} onto {to}: a step of {to} is not a map", from.value),
            })?;
        }
        for (p, v) in &self.spec.set {
            p.value
                .put(&mut item, v.clone())
                .map_err(|_| format!("setting {}: a step on the way is not a map", p.value))?;
        }
        Ok(item)
    }

    /// The destination's key for a source key.
    pub fn key(&self, mut key: Item) -> Item {
        for (from, to) in &self.key_renames {
            if let Some(v) = key.remove(from) {
                key.insert(to.clone(), v);
            }
        }
        key
    }

    /// A source item as a change: a put of its transformed image, or a delete when the filter
    /// leaves it out (the destination may hold an earlier image that matched).
    pub fn put(&self, item: Item) -> Result<Shaped, String> {
        if self.is_identity() {
            return Ok(Shaped::Put(item));
        }
        if !self.passes(&item)? {
            return Ok(Shaped::Delete(self.key(crate::item::key_of(&self.source_keys, &item))));
        }
        self.reshape(item).map(Shaped::Put)
    }

    /// A bulk-loaded item: as [`Transform::put`], but one outside the filter is skipped, which
    /// saves a delete per left-out item of a fresh copy. Safe: an image of it at the destination
    /// can only come from this bulk load, read after the capture point; whatever took the item out
    /// of the filter came later still, and the stream replays it (as a put that becomes a delete).
    pub fn load(&self, item: Item) -> Result<Shaped, String> {
        Ok(match self.put(item)? {
            Shaped::Delete(_) => Shaped::Skip,
            other => other,
        })
    }

    /// What one change does at the destination. A read-through change is shaped once its item
    /// is read ([`Transform::put`] of the item, or a delete of [`Transform::key`]).
    pub fn shape(&self, op: crate::apply::Op) -> Result<Shaped, String> {
        use crate::apply::Op;
        match op {
            Op::Put(i) => self.put(i),
            Op::PutRaw(r) => self.put(r.to_item()),
            Op::LoadRaw(r) => self.load(r.to_item()),
            Op::Load(i) => self.load(i),
            Op::Delete(k) => Ok(Shaped::Delete(self.key(k))),
            Op::Fetch(_) => Err("a read-through change is shaped only once its item is read".into()),
        }
    }
}

#[cfg(test)]
mod fast_tests;
#[cfg(test)]
mod tests;

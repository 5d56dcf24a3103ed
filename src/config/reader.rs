//! A small reader over toml's spanned document that collects every problem instead of stopping at
//! the first, each with its file, line and column.

use std::collections::HashSet;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Collects errors against one source text.
pub struct Errors<'a> {
    file: &'a str,
    src: &'a str,
    pub list: Vec<String>,
}

impl<'a> Errors<'a> {
    pub fn new(file: &'a str, src: &'a str) -> Self {
        Self {
            file,
            src,
            list: Vec::new(),
        }
    }

    pub fn at(&mut self, span: Range<usize>, msg: impl std::fmt::Display) {
        let place = self.place(span.start);
        self.list.push(format!("{place}: {msg}"));
    }

    /// `file:line:col` of a byte offset, for problems found after reading.
    pub fn place(&self, offset: usize) -> String {
        let (line, col) = line_col(self.src, offset);
        format!("{}:{line}:{col}", self.file)
    }

    /// The source text itself.
    pub fn src(&self) -> &'a str {
        self.src
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// One TOML table being read; remembers which keys were asked for so the rest are reported.
pub struct Obj<'t, 'i> {
    table: &'t DeTable<'i>,
    span: Range<usize>,
    /// How the table is named in messages: `[source]`, `[[table]] #2`.
    name: String,
    known: HashSet<&'static str>,
}

impl<'t, 'i> Obj<'t, 'i> {
    pub fn new(table: &'t DeTable<'i>, span: Range<usize>, name: impl Into<String>) -> Self {
        Self {
            table,
            span,
            name: name.into(),
            known: HashSet::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// A value of any type (it then counts as read), for readers of their own.
    pub fn raw(&mut self, key: &'static str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.get(key)
    }

    fn get(&mut self, key: &'static str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.known.insert(key);
        self.table.get(key)
    }

    fn wrong(&self, errs: &mut Errors, v: &Spanned<DeValue>, key: &str, want: &str) {
        errs.at(
            v.span(),
            format!(
                "{key} in {} must be {want}, found {}",
                self.name,
                v.get_ref().type_str()
            ),
        );
    }

    /// Where `key` stands, if present (it then counts as read).
    pub fn span_of(&mut self, key: &'static str) -> Option<Range<usize>> {
        self.get(key).map(|v| v.span())
    }

    pub fn string(&mut self, errs: &mut Errors, key: &'static str) -> Option<String> {
        self.string_at(errs, key).map(|(s, _)| s)
    }

    /// A string and where it stands, for errors about its value.
    pub fn string_at(&mut self, errs: &mut Errors, key: &'static str) -> Option<(String, Range<usize>)> {
        let v = self.get(key)?;
        match v.get_ref().as_str() {
            Some(s) => Some((s.to_string(), v.span())),
            None => {
                self.wrong(errs, v, key, "a string");
                None
            }
        }
    }

    pub fn bool(&mut self, errs: &mut Errors, key: &'static str) -> Option<bool> {
        let v = self.get(key)?;
        match v.get_ref().as_bool() {
            Some(b) => Some(b),
            None => {
                self.wrong(errs, v, key, "true or false");
                None
            }
        }
    }

    /// An integer in `min..=max`; `why` says what the minimum protects.
    pub fn uint_in(&mut self, errs: &mut Errors, key: &'static str, min: u64, max: u64, why: &str) -> Option<u64> {
        let (n, span) = self.uint_at(errs, key, max)?;
        if n < min {
            errs.at(
                span,
                format!("{key} in {} must be at least {min}, found {n}: {why}", self.name),
            );
            return None;
        }
        Some(n)
    }

    /// A non-negative integer within `max`.
    pub fn uint(&mut self, errs: &mut Errors, key: &'static str, max: u64) -> Option<u64> {
        self.uint_at(errs, key, max).map(|(n, _)| n)
    }

    fn uint_at(&mut self, errs: &mut Errors, key: &'static str, max: u64) -> Option<(u64, Range<usize>)> {
        let v = self.get(key)?;
        let parsed = v.get_ref().as_integer().and_then(|i| {
            let s = i.as_str().replace('_', "");
            u64::from_str_radix(s.trim_start_matches('+'), i.radix()).ok()
        });
        match parsed {
            Some(n) if n <= max => Some((n, v.span())),
            Some(n) => {
                errs.at(
                    v.span(),
                    format!("{key} in {} must be at most {max}, found {n}", self.name),
                );
                None
            }
            None => {
                match v.get_ref().as_integer() {
                    Some(i) => errs.at(
                        v.span(),
                        format!(
                            "{key} in {} must be a non-negative integer, found {}",
                            self.name,
                            i.as_str()
                        ),
                    ),
                    None => self.wrong(errs, v, key, "a non-negative integer"),
                }
                None
            }
        }
    }

    pub fn table(&mut self, errs: &mut Errors, key: &'static str) -> Option<Obj<'t, 'i>> {
        let v = self.get(key)?;
        match v.get_ref().as_table() {
            Some(t) => Some(Obj::new(t, v.span(), format!("[{}{key}]", self.prefix()))),
            None => {
                self.wrong(errs, v, key, "a table");
                None
            }
        }
    }

    /// `[[key]]` entries.
    pub fn tables(&mut self, errs: &mut Errors, key: &'static str) -> Option<Vec<Obj<'t, 'i>>> {
        let v = self.get(key)?;
        let Some(arr) = v.get_ref().as_array() else {
            self.wrong(errs, v, key, "an array of tables ([[table]])");
            return None;
        };
        let mut out = Vec::new();
        for (i, e) in arr.iter().enumerate() {
            match e.get_ref().as_table() {
                Some(t) => out.push(Obj::new(t, e.span(), format!("[[{key}]] #{}", i + 1))),
                None => errs.at(e.span(), format!("{key} entries must be tables")),
            }
        }
        Some(out)
    }

    /// Reports every key that no reader asked for.
    pub fn finish(self, errs: &mut Errors) {
        let mut allowed: Vec<&str> = self.known.iter().copied().collect();
        allowed.sort();
        for (k, _) in self.table.iter() {
            if !self.known.contains(k.get_ref().as_ref()) {
                errs.at(
                    k.span(),
                    format!(
                        "unknown key {:?} in {} (expected one of: {})",
                        k.get_ref(),
                        self.name,
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    fn prefix(&self) -> String {
        if !self.name.starts_with('[') {
            return String::new(); // the document root
        }
        format!("{}.", self.name.trim_start_matches('[').trim_end_matches(']'))
    }
}

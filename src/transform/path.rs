//! Attribute paths as transforms name them: `profile.email` is the `email` entry of the map
//! attribute `profile`. A name holding a dot or a backtick is written in backticks
//! (`` `a.b`.c ``, a doubled backtick inside stands for one). List elements are not addressable:
//! a transform moves or removes whole attributes and map entries.

use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::item::Item;

/// A non-empty list of names, the first a top-level attribute, the rest map entries below it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path(Vec<String>);

impl Path {
    pub fn parse(s: &str) -> Result<Path, String> {
        let mut parts = Vec::new();
        let mut chars = s.chars().peekable();
        loop {
            let mut name = String::new();
            if chars.peek() == Some(&'`') {
                chars.next();
                loop {
                    match chars.next() {
                        Some('`') if chars.peek() == Some(&'`') => {
                            chars.next();
                            name.push('`');
                        }
                        Some('`') => break,
                        Some(c) => name.push(c),
                        None => return Err(format!("{s:?}: a backtick-quoted name is not closed")),
                    }
                }
                if !matches!(chars.peek(), None | Some('.')) {
                    return Err(format!("{s:?}: a quoted name must be followed by '.' or the end"));
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == '.' {
                        break;
                    }
                    if c == '[' || c == '`' {
                        return Err(format!(
                            "{s:?}: {c:?} is not allowed in a name (quote the name in backticks; list elements are not addressable)"
                        ));
                    }
                    name.push(c);
                    chars.next();
                }
            }
            if name.is_empty() {
                return Err(format!("{s:?}: an attribute path has an empty name"));
            }
            parts.push(name);
            match chars.next() {
                None => return Ok(Path(parts)),
                Some(_dot) => {}
            }
        }
    }

    /// A top-level attribute.
    pub fn top(name: &str) -> Path {
        Path(vec![name.to_string()])
    }

    pub fn is_top(&self) -> bool {
        self.0.len() == 1
    }

    /// The top-level attribute this path is in.
    pub fn root(&self) -> &str {
        &self.0[0]
    }

    /// `self` is `other` or lies inside it.
    pub fn within(&self, other: &Path) -> bool {
        self.0.starts_with(&other.0)
    }

    /// Removes and returns the value at this path, if there is one.
    pub fn take(&self, item: &mut Item) -> Option<AttributeValue> {
        let (last, parents) = self.0.split_last().expect("a path is never empty");
        if parents.is_empty() {
            return item.remove(last);
        }
        let mut map = match item.get_mut(&parents[0])? {
            AttributeValue::M(m) => m,
            _ => return None,
        };
        for name in &parents[1..] {
            map = match map.get_mut(name)? {
                AttributeValue::M(m) => m,
                _ => return None,
            };
        }
        map.remove(last)
    }

    /// Whether the item holds a value at this path.
    pub fn exists(&self, item: &Item) -> bool {
        let mut value = item.get(&self.0[0]);
        for name in &self.0[1..] {
            value = match value {
                Some(AttributeValue::M(m)) => m.get(name),
                _ => None,
            };
        }
        value.is_some()
    }

    /// Puts `value` at this path, making the maps on the way where they are missing. Fails when
    /// a step on the way is there but not a map.
    pub fn put(&self, item: &mut Item, value: AttributeValue) -> Result<(), Blocked> {
        self.parent(item)?.insert(self.last().clone(), value);
        Ok(())
    }

    /// As [`Path::put`], but fails rather than replace a value already there.
    pub fn put_new(&self, item: &mut Item, value: AttributeValue) -> Result<(), Blocked> {
        match self.parent(item)?.entry(self.last().clone()) {
            std::collections::hash_map::Entry::Occupied(_) => Err(Blocked::Taken),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(value);
                Ok(())
            }
        }
    }

    fn last(&self) -> &String {
        self.0.last().expect("a path is never empty")
    }

    /// The map that holds this path's last name, made where missing.
    fn parent<'a>(&self, item: &'a mut Item) -> Result<&'a mut Item, Blocked> {
        let mut map = item;
        for name in &self.0[..self.0.len() - 1] {
            let slot = map
                .entry(name.clone())
                .or_insert_with(|| AttributeValue::M(Default::default()));
            map = match slot {
                AttributeValue::M(m) => m,
                _ => return Err(Blocked::NotAMap),
            };
        }
        Ok(map)
    }
}

/// Why a value could not be put at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// A step on the way holds something other than a map.
    NotAMap,
    /// The path already holds a value.
    Taken,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            if name.contains(['.', '`', '[']) {
                write!(f, "`{}`", name.replace('`', "``"))?;
            } else {
                f.write_str(name)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    #[test]
    fn paths_parse_with_quoted_names_and_print_back() {
        let p = Path::parse("profile.`e.mail`.x").unwrap();
        assert_eq!(p.0, ["profile", "e.mail", "x"]);
        assert_eq!(p.to_string(), "profile.`e.mail`.x");
        assert_eq!(Path::parse("`a``b`").unwrap().0, ["a`b"]);
        for bad in ["", "a..b", "a.", "tags[0]", "`open", "`a`b"] {
            assert!(Path::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn take_and_put_walk_maps_and_leave_other_types_alone() {
        let mut item = Item::from([
            ("m".to_string(), AttributeValue::M([("a".to_string(), s("1"))].into())),
            ("l".to_string(), AttributeValue::L(vec![s("x")])),
        ]);
        let a = Path::parse("m.a").unwrap();
        assert!(a.exists(&item));
        assert_eq!(a.take(&mut item), Some(s("1")));
        assert_eq!(a.take(&mut item), None);
        assert_eq!(Path::parse("l.x").unwrap().take(&mut item), None, "a list is not a map");
        Path::parse("n.b.c").unwrap().put(&mut item, s("2")).unwrap();
        assert!(Path::parse("n.b.c").unwrap().exists(&item));
        assert_eq!(
            Path::parse("l.y").unwrap().put(&mut item, s("3")),
            Err(Blocked::NotAMap)
        );
        assert_eq!(
            Path::parse("n.b.c").unwrap().put_new(&mut item, s("4")),
            Err(Blocked::Taken)
        );
    }
}

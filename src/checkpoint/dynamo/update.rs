//! An UpdateItem's expression, built one attribute at a time (every name through `#name`, so no
//! attribute can collide with a reserved word).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue as Av;

#[derive(Default)]
pub struct Update {
    set: Vec<String>,
    remove: Vec<String>,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, Av>,
}

impl Update {
    fn name(&mut self, attr: &str) -> String {
        let n = format!("#{attr}");
        self.names.insert(n.clone(), attr.to_string());
        n
    }

    pub fn set(mut self, attr: &str, v: Av) -> Self {
        let n = self.name(attr);
        self.values.insert(format!(":{attr}"), v);
        self.set.push(format!("{n} = :{attr}"));
        self
    }

    /// Sets the attribute only when the item has none yet (a new row's first value).
    pub fn set_if_absent(mut self, attr: &str, v: Option<Av>) -> Self {
        let Some(v) = v else { return self };
        let n = self.name(attr);
        self.values.insert(format!(":{attr}"), v);
        self.set.push(format!("{n} = if_not_exists({n}, :{attr})"));
        self
    }

    /// Sets the attribute, or removes it for `None`.
    pub fn set_or_remove(mut self, attr: &str, v: Option<Av>) -> Self {
        match v {
            Some(v) => self.set(attr, v),
            None => {
                let n = self.name(attr);
                self.remove.push(n);
                self
            }
        }
    }

    /// Sets the attribute when `Some`, keeps it otherwise.
    pub fn set_some(self, attr: &str, v: Option<Av>) -> Self {
        match v {
            Some(v) => self.set(attr, v),
            None => self,
        }
    }

    pub fn expression(&self) -> String {
        let mut e = format!("SET {}", self.set.join(", "));
        if !self.remove.is_empty() {
            e.push_str(&format!(" REMOVE {}", self.remove.join(", ")));
        }
        e
    }
}

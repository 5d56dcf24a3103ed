//! The filter's expression as the runtime sees it: what it reads of the item ([`Walk`]), its
//! reads rewritten into variables of their own ([`rewrite`]), and those variables answered from
//! one item ([`Row`]), converting a value only when evaluation reaches it.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::AttributeValue;
use cel::Value;
use cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedEntryExpr, IdedExpr, ListExpr, LiteralValue, MapEntryExpr,
    MapExpr, SelectExpr, StructExpr, StructFieldExpr,
};
use cel::common::value::CowVal;
use cel::context::VariableResolver;

use super::filter::{ITEM, to_cel};
use crate::item::Item;

/// The variable a read of the path `a.b` becomes is `ATTR` + `a` SEP `b`; a has() test of it,
/// `HAS` + the same. The prefixes hold a character no identifier can, so no name in the expression
/// meets them; a filter naming an attribute that holds SEP is run on the whole item instead.
pub(super) const ATTR: &str = "\u{1}attr:";
pub(super) const HAS: &str = "\u{1}has:";
pub(super) const SEP: char = '\0';

/// The value at a rewritten path; `None` when it, or a map on the way, is missing, or a step on
/// the way is not a map (each an error in CEL).
pub(super) fn at_path<'a>(item: &'a Item, path: &str) -> Option<&'a AttributeValue> {
    let mut names = path.split(SEP);
    let mut v = item.get(names.next()?)?;
    for name in names {
        v = match v {
            AttributeValue::M(m) => m.get(name)?,
            _ => return None,
        };
    }
    Some(v)
}

/// has() of a rewritten path: whether its last name is in the map holding it; `None` when that
/// map is not there (an error in CEL).
pub(super) fn has_path(item: &Item, path: &str) -> Option<bool> {
    match path.rsplit_once(SEP) {
        None => Some(item.contains_key(path)),
        Some((parent, last)) => match at_path(item, parent)? {
            AttributeValue::M(m) => Some(m.contains_key(last)),
            _ => None,
        },
    }
}

/// Answers the rewritten reads from one item, converting a value only when it is read.
pub(super) struct Row<'a>(pub &'a Item);

impl VariableResolver for Row<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let value = match variable.strip_prefix(HAS) {
            Some(path) => Value::Bool(has_path(self.0, path)?),
            None => to_cel(at_path(self.0, variable.strip_prefix(ATTR)?)?),
        };
        value.try_into().ok().map(CowVal::Owned)
    }
}

/// The expression with its reads of the item (outside comprehensions that rebind `item`)
/// replaced by [`ATTR`] and [`HAS`] variables.
pub(super) fn rewrite(e: &IdedExpr, bound: &mut Vec<String>) -> IdedExpr {
    let with = |expr| IdedExpr { id: e.id, expr };
    match &e.expr {
        Expr::Select(s) if is_item(&s.operand, bound) => {
            let prefix = if s.test { HAS } else { ATTR };
            with(Expr::Ident(format!("{prefix}{}", s.field)))
        }
        Expr::Call(c) if c.func_name == "_[_]" && c.args.len() == 2 && is_item(&c.args[0], bound) => {
            match &c.args[1].expr {
                Expr::Literal(LiteralValue::String(s)) => with(Expr::Ident(format!("{ATTR}{}", s.inner()))),
                _ => e.clone(), // a computed name means the item is used whole: not rewritten
            }
        }
        Expr::Select(s) => {
            let operand = rewrite(&s.operand, bound);
            // A read below a rewritten read is a longer path.
            if let Expr::Ident(n) = &operand.expr
                && let Some(path) = n.strip_prefix(ATTR)
            {
                let prefix = if s.test { HAS } else { ATTR };
                return with(Expr::Ident(format!("{prefix}{path}{SEP}{}", s.field)));
            }
            with(Expr::Select(SelectExpr {
                operand: Box::new(operand),
                ..s.clone()
            }))
        }
        Expr::Call(c) => with(Expr::Call(CallExpr {
            func_name: c.func_name.clone(),
            target: c.target.as_ref().map(|t| Box::new(rewrite(t, bound))),
            args: c.args.iter().map(|a| rewrite(a, bound)).collect(),
        })),
        Expr::List(l) => with(Expr::List(ListExpr {
            elements: l.elements.iter().map(|x| rewrite(x, bound)).collect(),
            ..l.clone()
        })),
        Expr::Comprehension(c) => with(Expr::Comprehension(Box::new(rewrite_comprehension(c, bound)))),
        Expr::Map(m) => with(Expr::Map(MapExpr {
            entries: m.entries.iter().map(|x| rewrite_entry(x, bound)).collect(),
        })),
        Expr::Struct(st) => with(Expr::Struct(StructExpr {
            type_name: st.type_name.clone(),
            entries: st.entries.iter().map(|x| rewrite_entry(x, bound)).collect(),
        })),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => e.clone(),
    }
}

/// A comprehension's parts rewritten, its own variables bound inside its loop.
fn rewrite_comprehension(c: &ComprehensionExpr, bound: &mut Vec<String>) -> ComprehensionExpr {
    let mut out = c.clone();
    out.iter_range = rewrite(&c.iter_range, bound);
    out.accu_init = rewrite(&c.accu_init, bound);
    let n = bound.len();
    bound.push(c.iter_var.clone());
    bound.extend(c.iter_var2.clone());
    bound.push(c.accu_var.clone());
    out.loop_cond = rewrite(&c.loop_cond, bound);
    out.loop_step = rewrite(&c.loop_step, bound);
    out.result = rewrite(&c.result, bound);
    bound.truncate(n);
    out
}

fn rewrite_entry(e: &IdedEntryExpr, bound: &mut Vec<String>) -> IdedEntryExpr {
    let expr = match &e.expr {
        EntryExpr::StructField(f) => EntryExpr::StructField(StructFieldExpr {
            value: rewrite(&f.value, bound),
            ..f.clone()
        }),
        EntryExpr::MapEntry(m) => EntryExpr::MapEntry(MapEntryExpr {
            key: rewrite(&m.key, bound),
            value: rewrite(&m.value, bound),
            optional: m.optional,
        }),
    };
    IdedEntryExpr { id: e.id, expr }
}

/// What the expression reads of the item, and names it uses that are not there.
#[derive(Default)]
pub(super) struct Walk {
    pub reads: BTreeSet<String>,
    /// The item is used as a whole (passed to a function, iterated, compared).
    pub whole: bool,
    pub unknown: BTreeSet<String>,
}

impl Walk {
    /// `bound`: comprehension variables in scope.
    pub fn visit(&mut self, e: &IdedExpr, bound: &mut Vec<String>) {
        let holds_sep = match &e.expr {
            Expr::Select(s) => s.field.contains(SEP),
            Expr::Literal(LiteralValue::String(s)) => s.inner().contains(SEP),
            _ => false,
        };
        self.whole |= holds_sep;
        match &e.expr {
            Expr::Select(s) if is_item(&s.operand, bound) => {
                self.reads.insert(s.field.clone());
            }
            Expr::Call(c) if c.func_name == "_[_]" && c.args.len() == 2 && is_item(&c.args[0], bound) => {
                match &c.args[1].expr {
                    Expr::Literal(LiteralValue::String(s)) => {
                        self.reads.insert(s.inner().to_string());
                    }
                    _ => {
                        self.whole = true;
                        self.visit(&c.args[1], bound);
                    }
                }
            }
            Expr::Ident(name) if name == ITEM && !bound.contains(name) => self.whole = true,
            Expr::Ident(name) if !name.starts_with('@') && !bound.contains(name) => {
                self.unknown.insert(name.clone());
            }
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
            Expr::Select(s) => self.visit(&s.operand, bound),
            Expr::Call(c) => {
                c.target.iter().for_each(|t| self.visit(t, bound));
                c.args.iter().for_each(|a| self.visit(a, bound));
            }
            Expr::List(l) => l.elements.iter().for_each(|x| self.visit(x, bound)),
            Expr::Map(m) => m.entries.iter().for_each(|x| self.visit_entry(&x.expr, bound)),
            Expr::Struct(s) => s.entries.iter().for_each(|x| self.visit_entry(&x.expr, bound)),
            Expr::Comprehension(c) => {
                self.visit(&c.iter_range, bound);
                self.visit(&c.accu_init, bound);
                let n = bound.len();
                bound.push(c.iter_var.clone());
                bound.extend(c.iter_var2.clone());
                bound.push(c.accu_var.clone());
                for x in [&c.loop_cond, &c.loop_step, &c.result] {
                    self.visit(x, bound);
                }
                bound.truncate(n);
            }
        }
    }

    fn visit_entry(&mut self, e: &EntryExpr, bound: &mut Vec<String>) {
        match e {
            EntryExpr::StructField(f) => self.visit(&f.value, bound),
            EntryExpr::MapEntry(m) => {
                self.visit(&m.key, bound);
                self.visit(&m.value, bound);
            }
        }
    }
}

fn is_item(e: &IdedExpr, bound: &[String]) -> bool {
    matches!(&e.expr, Expr::Ident(n) if n == ITEM && !bound.iter().any(|b| b == ITEM))
}

/// What the expression certainly returns when that is not a bool (`None`: a bool, or not known
/// before it runs; the run then checks).
pub(super) fn not_boolean(e: &IdedExpr) -> Option<&'static str> {
    match &e.expr {
        Expr::Literal(LiteralValue::Boolean(_)) => None,
        Expr::Literal(LiteralValue::Null) => Some("null"),
        Expr::Literal(LiteralValue::String(_)) => Some("a string"),
        Expr::Literal(LiteralValue::Bytes(_)) => Some("bytes"),
        Expr::Literal(_) => Some("a number"),
        Expr::List(_) => Some("a list"),
        Expr::Map(_) => Some("a map"),
        Expr::Call(c) => match c.func_name.as_str() {
            "_+_" | "_-_" | "_*_" | "_/_" | "_%_" | "-_" => Some("a value computed by arithmetic"),
            "size" | "int" | "uint" | "double" | "string" | "bytes" => Some("a value that is not a bool"),
            "_?_:_" if c.args.len() == 3 => not_boolean(&c.args[1]).and(not_boolean(&c.args[2])),
            _ => None,
        },
        _ => None,
    }
}

//! A native fast path for the commonest filters: `has()` tests, comparisons of an attribute (or a
//! map entry's path) with a literal (strings and bools for equality, whole numbers for every comparison), joined by `&&`,
//! `||` and `!`. It answers only where its answer is certainly CEL's, and says "ask CEL" for
//! anything else (a missing attribute, another type, a number that is not a whole 64-bit one), so
//! the result is always the interpreter's. The differential test in `tests.rs` holds it to that.
//!
//! Why: evaluating through the interpreter costs about 0.25 µs a record, most of the budget a
//! transform may add to the apply path; this costs a few nanoseconds.

use aws_sdk_dynamodb::types::AttributeValue;
use cel::common::ast::{Expr, IdedExpr, LiteralValue};

use super::expr::{ATTR, HAS, at_path, has_path};
use crate::item::Item;

/// A filter in the fast path's terms, built from the rewritten expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Fast {
    Const(bool),
    Has(String),
    /// A read that is itself the answer (`item.active`): known only when it holds a bool.
    Bool(String),
    Cmp {
        attr: String,
        op: Op,
        lit: Lit,
    },
    And(Box<Fast>, Box<Fast>),
    Or(Box<Fast>, Box<Fast>),
    Not(Box<Fast>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Bool(bool),
    Int(i64),
}

impl Fast {
    /// The fast form of `e`, or `None` when any part of it is outside the fast path.
    pub fn of(e: &IdedExpr) -> Option<Fast> {
        match &e.expr {
            Expr::Literal(LiteralValue::Boolean(b)) => Some(Fast::Const(*b.inner())),
            Expr::Ident(name) => match (name.strip_prefix(HAS), name.strip_prefix(ATTR)) {
                (Some(path), _) => Some(Fast::Has(path.to_string())),
                (_, Some(path)) => Some(Fast::Bool(path.to_string())),
                _ => None,
            },
            Expr::Call(c) if c.target.is_none() => {
                let two = |f: fn(Box<Fast>, Box<Fast>) -> Fast| match c.args.as_slice() {
                    [a, b] => Some(f(Box::new(Fast::of(a)?), Box::new(Fast::of(b)?))),
                    _ => None,
                };
                match c.func_name.as_str() {
                    "_&&_" => two(Fast::And),
                    "_||_" => two(Fast::Or),
                    "!_" => match c.args.as_slice() {
                        [a] => Some(Fast::Not(Box::new(Fast::of(a)?))),
                        _ => None,
                    },
                    f => compare(f, &c.args),
                }
            }
            _ => None,
        }
    }

    /// The filter's answer for `item`, or `None`: ask CEL.
    pub fn eval(&self, item: &Item) -> Option<bool> {
        match self {
            Fast::Const(b) => Some(*b),
            Fast::Has(path) => has_path(item, path),
            Fast::Bool(path) => match at_path(item, path)? {
                AttributeValue::Bool(b) => Some(*b),
                _ => None,
            },
            Fast::Cmp { attr, op, lit } => cmp(at_path(item, attr)?, *op, lit),
            Fast::And(a, b) => match a.eval(item)? {
                false => Some(false),
                true => b.eval(item),
            },
            Fast::Or(a, b) => match a.eval(item)? {
                true => Some(true),
                false => b.eval(item),
            },
            Fast::Not(a) => a.eval(item).map(|b| !b),
        }
    }
}

/// `attribute op literal`, either way round.
fn compare(func: &str, args: &[IdedExpr]) -> Option<Fast> {
    let op = match func {
        "_==_" => Op::Eq,
        "_!=_" => Op::Ne,
        "_<_" => Op::Lt,
        "_<=_" => Op::Le,
        "_>_" => Op::Gt,
        "_>=_" => Op::Ge,
        _ => return None,
    };
    let attr = |e: &IdedExpr| match &e.expr {
        Expr::Ident(n) => n.strip_prefix(ATTR).map(str::to_string),
        _ => None,
    };
    let (attr, lit, op) = match args {
        [a, b] => match (attr(a), literal(b), attr(b), literal(a)) {
            (Some(n), Some(l), _, _) => (n, l, op),
            (_, _, Some(n), Some(l)) => (n, l, flip(op)),
            _ => return None,
        },
        _ => return None,
    };
    // Only numbers are ordered here: equality is all the fast path does for strings and bools.
    let ordered = !matches!(op, Op::Eq | Op::Ne);
    (!ordered || matches!(lit, Lit::Int(_))).then_some(Fast::Cmp { attr, op, lit })
}

fn literal(e: &IdedExpr) -> Option<Lit> {
    match &e.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(Lit::Str(s.inner().to_string())),
        Expr::Literal(LiteralValue::Boolean(b)) => Some(Lit::Bool(*b.inner())),
        Expr::Literal(LiteralValue::Int(i)) => Some(Lit::Int(*i.inner())),
        _ => None,
    }
}

/// `lit op attr` as `attr op' lit`.
fn flip(op: Op) -> Op {
    match op {
        Op::Lt => Op::Gt,
        Op::Le => Op::Ge,
        Op::Gt => Op::Lt,
        Op::Ge => Op::Le,
        same => same,
    }
}

fn cmp(v: &AttributeValue, op: Op, lit: &Lit) -> Option<bool> {
    let ord = match (v, lit) {
        (AttributeValue::S(s), Lit::Str(l)) => s.as_str().cmp(l.as_str()),
        (AttributeValue::Bool(b), Lit::Bool(l)) => b.cmp(l),
        // CEL sees a whole number within 64 bits as an int (see `filter::to_cel`).
        (AttributeValue::N(n), Lit::Int(l)) => n.parse::<i64>().ok()?.cmp(l),
        _ => return None,
    };
    Some(match op {
        Op::Eq => ord.is_eq(),
        Op::Ne => ord.is_ne(),
        Op::Lt => ord.is_lt(),
        Op::Le => ord.is_le(),
        Op::Gt => ord.is_gt(),
        Op::Ge => ord.is_ge(),
    })
}

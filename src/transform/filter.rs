//! The `filter` of a transform: a CEL expression over the source item, bound as `item`
//! (`item.tenant == "acme" && has(item.active)`).
//!
//! CEL (cel.dev) because it is made for exactly this: a side-effect-free predicate over data,
//! always terminating, with a written spec, and the same syntax people know from IAM conditions,
//! Kubernetes and Envoy. Evaluated through the `cel` crate (cel-rust).
//!
//! DynamoDB values reach CEL as: S → string, N → int when it is a whole number within 64 bits,
//! else double, B → bytes, BOOL → bool, NULL → null, L and the sets → lists, M → map.
//! Speed: before it runs, the expression's reads of the item (`item.a`, `item["a"]`, `has(item.a)`)
//! are rewritten into variables of their own, which a resolver answers from the item when (and
//! only if) evaluation reaches them. No map of the item is built, and `has()` converts nothing.
//! An expression that uses the item as a whole (`size(item)`) gets it as a map instead.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use cel::common::ast::IdedExpr;
use cel::objects::{Key, Map};
use cel::{Context, Env, Program, Value};

use super::expr::{ATTR, HAS, Row, SEP, Walk, not_boolean, rewrite};
use super::fast::Fast;
use crate::item::Item;

/// The name the item has inside the expression.
pub const ITEM: &str = "item";

/// A compiled filter; shared by every lane of a table.
pub struct Filter {
    /// The expression, its reads of the item rewritten (see the module docs).
    expr: IdedExpr,
    env: Arc<Env>,
    /// Top-level attributes the expression reads; `None` when it uses the item as a whole.
    reads: Option<Vec<String>>,
    /// The native form of the expression, where it has one ([`super::fast`]).
    fast: Option<Fast>,
    pub source: String,
}

/// A compile problem, at a line and column inside the expression (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Filter({:?})", self.source)
    }
}

impl Filter {
    /// Compiles `source`, or says everything wrong with it. The parser recurses deeply on
    /// nested input, so it runs on a thread with a stack of its own.
    pub fn compile(source: &str) -> Result<Filter, Vec<Problem>> {
        let text = source.to_string();
        let parsed = std::thread::Builder::new()
            .name("ferry-cel-compile".into())
            .stack_size(256 << 20)
            .spawn(move || Program::compile(&text).map_err(|e| problems_of(&e)))
            .expect("a compile thread starts")
            .join()
            .unwrap_or_else(|_| {
                Err(vec![Problem {
                    line: 1,
                    col: 1,
                    message: "the expression is nested too deeply to compile".into(),
                }])
            })?;
        let mut walk = Walk::default();
        walk.visit(parsed.expression(), &mut Vec::new());
        let mut problems = Vec::new();
        for name in &walk.unknown {
            problems.push(at_start(format!(
                "unknown name {name:?}: the item is {ITEM:?} (write {ITEM}.{name} for its attribute)"
            )));
        }
        if let Some(kind) = not_boolean(parsed.expression()) {
            problems.push(at_start(format!(
                "a filter must return true or false, this returns {kind}"
            )));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let expr = match walk.whole {
            true => parsed.expression().clone(),
            false => rewrite(parsed.expression(), &mut Vec::new()),
        };
        Ok(Filter {
            fast: (!walk.whole).then(|| Fast::of(&expr)).flatten(),
            expr,
            env: Arc::new(Env::stdlib()),
            reads: (!walk.whole).then(|| walk.reads.into_iter().collect()),
            source: source.to_string(),
        })
    }

    /// Whether `item` passes. An evaluation error (an attribute read that the item lacks, a
    /// comparison of mismatched types) or a result that is not a bool is the item's problem:
    /// the caller stops the table naming the key, as for any record that cannot be applied.
    pub fn matches(&self, item: &Item) -> Result<bool, String> {
        match self.fast_answer(item) {
            Some(answer) => Ok(answer),
            None => self.interpret(item),
        }
    }

    /// The fast path's answer, where it has one.
    pub fn fast_answer(&self, item: &Item) -> Option<bool> {
        self.fast.as_ref().and_then(|f| f.eval(item))
    }

    /// [`Filter::matches`] through the CEL interpreter alone.
    pub fn interpret(&self, item: &Item) -> Result<bool, String> {
        let row = Row(item);
        let mut ctx = Context::with_env(self.env.clone());
        match self.reads {
            Some(_) => ctx.set_variable_resolver(&row),
            None => ctx.add_variable_from_value(ITEM, item_map(item)),
        }
        match ctx.resolve(&self.expr) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!(
                "the filter {:?} returned {other:?}, not true or false",
                self.source
            )),
            Err(cel::ExecutionError::UndeclaredReference(name)) if name.starts_with(ATTR) || name.starts_with(HAS) => {
                let path = name.trim_start_matches(ATTR).trim_start_matches(HAS).replace(SEP, ".");
                Err(format!(
                    "the filter {:?} reads {ITEM}.{path}, which this item lacks or holds in no map (test with has() first)",
                    self.source
                ))
            }
            Err(e) => Err(format!(
                "the filter {:?} failed on this item: {e} (use has({ITEM}.<name>) for attributes that may be missing)",
                self.source
            )),
        }
    }

    /// Whether the fast path can answer this filter (for some items at least).
    pub fn is_fast(&self) -> bool {
        self.fast.is_some()
    }

    /// The top-level attributes the filter reads (`None`: the whole item).
    pub fn reads(&self) -> Option<&[String]> {
        self.reads.as_deref()
    }
}

fn at_start(message: String) -> Problem {
    Problem {
        line: 1,
        col: 1,
        message,
    }
}

fn problems_of(e: &cel::ParseErrors) -> Vec<Problem> {
    e.errors
        .iter()
        .map(|p| Problem {
            line: p.pos.0.max(1) as usize,
            col: p.pos.1.max(1) as usize,
            message: p.msg.clone(),
        })
        .collect()
}

/// The whole item as a CEL map.
pub fn item_map(item: &Item) -> Value {
    let map = item.iter().map(|(n, v)| (key(n), to_cel(v))).collect();
    Value::Map(Map { map: Arc::new(map) })
}

fn key(name: &str) -> Key {
    Key::String(Arc::new(name.to_string()))
}

/// A DynamoDB value as CEL sees it (see the module docs).
pub fn to_cel(v: &AttributeValue) -> Value {
    let list = |vs: Vec<Value>| Value::List(Arc::new(vs));
    match v {
        AttributeValue::S(s) => Value::String(Arc::new(s.clone())),
        AttributeValue::N(n) => number(n),
        AttributeValue::B(b) => Value::Bytes(Arc::new(b.as_ref().to_vec())),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Ss(v) => list(v.iter().map(|s| Value::String(Arc::new(s.clone()))).collect()),
        AttributeValue::Ns(v) => list(v.iter().map(|n| number(n)).collect()),
        AttributeValue::Bs(v) => list(v.iter().map(|b| Value::Bytes(Arc::new(b.as_ref().to_vec()))).collect()),
        AttributeValue::L(v) => list(v.iter().map(to_cel).collect()),
        AttributeValue::M(m) => Value::Map(Map {
            map: Arc::new(m.iter().map(|(k, v)| (key(k), to_cel(v))).collect::<HashMap<_, _>>()),
        }),
        _ => Value::Null,
    }
}

fn number(n: &str) -> Value {
    match n.parse::<i64>() {
        Ok(i) => Value::Int(i),
        Err(_) => Value::Float(n.parse::<f64>().unwrap_or(f64::NAN)),
    }
}

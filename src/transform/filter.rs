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

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use cel::common::ast::{
    CallExpr, EntryExpr, Expr, IdedEntryExpr, IdedExpr, ListExpr, LiteralValue, MapEntryExpr, MapExpr, SelectExpr,
    StructExpr, StructFieldExpr,
};
use cel::common::value::CowVal;
use cel::context::VariableResolver;
use cel::objects::{Key, Map};
use cel::{Context, Env, Program, Value};

use super::fast::Fast;
use crate::item::Item;

/// The name the item has inside the expression.
pub const ITEM: &str = "item";

/// A compiled filter; shared by every lane of a table.
pub struct Filter {
    /// The expression, its reads of the item rewritten (see the module docs).
    expr: IdedExpr,
    /// As written, evaluated over the item bound as a map: the reference the rewrite and the fast
    /// path are tested against.
    original: IdedExpr,
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
            original: parsed.expression().clone(),
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
        self.run(item, self.reads.is_none())
    }

    /// The expression as written, over the whole item as a map (tests compare the rest with it).
    pub fn interpret_as_written(&self, item: &Item) -> Result<bool, String> {
        self.run(item, true)
    }

    fn run(&self, item: &Item, whole: bool) -> Result<bool, String> {
        let row = Row(item);
        let mut ctx = Context::with_env(self.env.clone());
        let expr = match whole {
            false => {
                ctx.set_variable_resolver(&row);
                &self.expr
            }
            true => {
                let map = item.iter().map(|(n, v)| (key(n), to_cel(v))).collect();
                ctx.add_variable_from_value(ITEM, Value::Map(Map { map: Arc::new(map) }));
                &self.original
            }
        };
        match ctx.resolve(expr) {
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
struct Row<'a>(&'a Item);

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
fn rewrite(e: &IdedExpr, bound: &mut Vec<String>) -> IdedExpr {
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
        Expr::Comprehension(c) => {
            let (range, init) = (rewrite(&c.iter_range, bound), rewrite(&c.accu_init, bound));
            let n = bound.len();
            bound.push(c.iter_var.clone());
            bound.extend(c.iter_var2.clone());
            bound.push(c.accu_var.clone());
            let mut out = (**c).clone();
            out.iter_range = range;
            out.accu_init = init;
            out.loop_cond = rewrite(&c.loop_cond, bound);
            out.loop_step = rewrite(&c.loop_step, bound);
            out.result = rewrite(&c.result, bound);
            bound.truncate(n);
            with(Expr::Comprehension(Box::new(out)))
        }
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

/// What the expression reads of the item, and names it uses that are not there.
#[derive(Default)]
struct Walk {
    reads: BTreeSet<String>,
    /// The item is used as a whole (passed to a function, iterated, compared).
    whole: bool,
    unknown: BTreeSet<String>,
}

impl Walk {
    /// `bound`: comprehension variables in scope.
    fn visit(&mut self, e: &IdedExpr, bound: &mut Vec<String>) {
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
fn not_boolean(e: &IdedExpr) -> Option<&'static str> {
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

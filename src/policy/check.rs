//! Static checking of a parsed CEL condition: every name must be a known person attribute,
//! every operator must get operands of the right types, and only the supported subset of
//! CEL may be used. The result is a typed tree ([`TExpr`]) that the fast evaluator is
//! compiled from and that explain walks.
//!
//! The cel crate checks nothing before running an expression, so a typo in an attribute
//! or `person.department == 3` would only surface as a rule that silently never matches.
//! This module turns those into load-time errors.

use super::schema::{Schema, Ty};
use crate::model::EmploymentStatus;
use cel::common::ast::{Expr, IdedExpr, LiteralValue, SourceInfo, operators};
use chrono::NaiveDate;
use std::fmt;

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    fn from_function(name: &str) -> Option<CmpOp> {
        Some(match name {
            operators::EQUALS => CmpOp::Eq,
            operators::NOT_EQUALS => CmpOp::Ne,
            operators::LESS => CmpOp::Lt,
            operators::LESS_EQUALS => CmpOp::Le,
            operators::GREATER => CmpOp::Gt,
            operators::GREATER_EQUALS => CmpOp::Ge,
            _ => return None,
        })
    }

    /// Apply to an ordering.
    pub fn holds(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => o == Equal,
            CmpOp::Ne => o != Equal,
            CmpOp::Lt => o == Less,
            CmpOp::Le => o != Greater,
            CmpOp::Gt => o == Greater,
            CmpOp::Ge => o != Less,
        }
    }
}

/// The string predicates a condition can call as methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrFn {
    StartsWith,
    EndsWith,
    Contains,
}

impl StrFn {
    pub fn name(self) -> &'static str {
        match self {
            StrFn::StartsWith => "startsWith",
            StrFn::EndsWith => "endsWith",
            StrFn::Contains => "contains",
        }
    }

    pub fn apply(self, s: &str, arg: &str) -> bool {
        match self {
            StrFn::StartsWith => s.starts_with(arg),
            StrFn::EndsWith => s.ends_with(arg),
            StrFn::Contains => s.contains(arg),
        }
    }
}

/// A type-checked condition. Every node's type is known; `And`/`Or` are flattened.
#[derive(Debug, Clone)]
pub enum TExpr {
    Bool(bool),
    Int(i64),
    Str(String),
    /// A date literal (`""` is `None`, the absent date).
    Date(Option<NaiveDate>),
    /// A person attribute: (field id in the schema, its type).
    Attr(usize, Ty),
    List(Vec<TExpr>),
    Not(Box<TExpr>),
    And(Vec<TExpr>),
    Or(Vec<TExpr>),
    Cmp(CmpOp, Box<TExpr>, Box<TExpr>),
    In(Box<TExpr>, Vec<TExpr>),
    StrFn(StrFn, Box<TExpr>, Box<TExpr>),
    Matches(Box<TExpr>, Box<regex::Regex>),
    Size(Box<TExpr>),
    Cond(Box<TExpr>, Box<TExpr>, Box<TExpr>),
}

impl TExpr {
    pub fn ty(&self) -> Ty {
        match self {
            TExpr::Bool(_)
            | TExpr::Not(_)
            | TExpr::And(_)
            | TExpr::Or(_)
            | TExpr::Cmp(..)
            | TExpr::In(..)
            | TExpr::StrFn(..)
            | TExpr::Matches(..) => Ty::Bool,
            TExpr::Int(_) | TExpr::Size(_) => Ty::Int,
            TExpr::Str(_) => Ty::Str,
            TExpr::Date(_) => Ty::Date,
            TExpr::Attr(_, t) => *t,
            TExpr::List(_) => Ty::List,
            TExpr::Cond(_, a, _) => a.ty(),
        }
    }

    /// Attribute ids this expression reads, in first-use order, without repeats.
    pub fn attrs(&self, out: &mut Vec<usize>) {
        match self {
            TExpr::Attr(id, _) => {
                if !out.contains(id) {
                    out.push(*id);
                }
            }
            TExpr::Bool(_) | TExpr::Int(_) | TExpr::Str(_) | TExpr::Date(_) => {}
            TExpr::List(xs) | TExpr::And(xs) | TExpr::Or(xs) => {
                xs.iter().for_each(|x| x.attrs(out));
            }
            TExpr::Not(x) | TExpr::Size(x) | TExpr::Matches(x, _) => x.attrs(out),
            TExpr::Cmp(_, a, b) | TExpr::StrFn(_, a, b) => {
                a.attrs(out);
                b.attrs(out);
            }
            TExpr::In(a, xs) => {
                a.attrs(out);
                xs.iter().for_each(|x| x.attrs(out));
            }
            TExpr::Cond(c, a, b) => {
                c.attrs(out);
                a.attrs(out);
                b.attrs(out);
            }
        }
    }

    /// Render as CEL source, with the schema's attribute names.
    pub fn display<'a>(&'a self, schema: &'a Schema) -> Display<'a> {
        Display { e: self, schema }
    }

    fn prec(&self) -> u8 {
        match self {
            TExpr::Cond(..) => 1,
            TExpr::Or(_) => 2,
            TExpr::And(_) => 3,
            TExpr::Cmp(..) | TExpr::In(..) => 4,
            TExpr::Not(_) => 6,
            _ => 7,
        }
    }
}

/// See [`TExpr::display`].
pub struct Display<'a> {
    e: &'a TExpr,
    schema: &'a Schema,
}

impl fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_expr(f, self.e, self.schema, 0)
    }
}

fn write_expr(f: &mut fmt::Formatter<'_>, e: &TExpr, s: &Schema, min_prec: u8) -> fmt::Result {
    let paren = e.prec() < min_prec;
    if paren {
        f.write_str("(")?;
    }
    let p = e.prec();
    match e {
        TExpr::Bool(b) => write!(f, "{b}")?,
        TExpr::Int(i) => write!(f, "{i}")?,
        TExpr::Str(v) => write_str_lit(f, v)?,
        TExpr::Date(d) => write_str_lit(f, &super::schema::date_text(*d))?,
        TExpr::Attr(id, _) => f.write_str(&s.field(*id).path)?,
        TExpr::List(xs) => {
            f.write_str("[")?;
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_expr(f, x, s, 0)?;
            }
            f.write_str("]")?;
        }
        TExpr::Not(x) => {
            f.write_str("!")?;
            write_expr(f, x, s, p)?;
        }
        TExpr::And(xs) | TExpr::Or(xs) => {
            let op = if matches!(e, TExpr::And(_)) {
                " && "
            } else {
                " || "
            };
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    f.write_str(op)?;
                }
                write_expr(f, x, s, p + 1)?;
            }
        }
        TExpr::Cmp(op, a, b) => {
            write_expr(f, a, s, p + 1)?;
            write!(f, " {} ", op.symbol())?;
            write_expr(f, b, s, p + 1)?;
        }
        TExpr::In(a, xs) => {
            write_expr(f, a, s, p + 1)?;
            f.write_str(" in ")?;
            write_expr(f, &TExpr::List(xs.clone()), s, 0)?;
        }
        TExpr::StrFn(func, a, b) => {
            write_expr(f, a, s, 7)?;
            write!(f, ".{}(", func.name())?;
            write_expr(f, b, s, 0)?;
            f.write_str(")")?;
        }
        TExpr::Matches(a, re) => {
            write_expr(f, a, s, 7)?;
            f.write_str(".matches(")?;
            write_str_lit(f, re.as_str())?;
            f.write_str(")")?;
        }
        TExpr::Size(x) => {
            f.write_str("size(")?;
            write_expr(f, x, s, 0)?;
            f.write_str(")")?;
        }
        TExpr::Cond(c, a, b) => {
            write_expr(f, c, s, p + 1)?;
            f.write_str(" ? ")?;
            write_expr(f, a, s, p + 1)?;
            f.write_str(" : ")?;
            write_expr(f, b, s, p)?;
        }
    }
    if paren {
        f.write_str(")")?;
    }
    Ok(())
}

/// A CEL string literal.
pub fn write_str_lit(f: &mut impl fmt::Write, v: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in v.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// A problem in a condition, at a character offset into the condition text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CondProblem {
    pub offset: usize,
    pub message: String,
    pub hint: String,
}

const SUPPORTED: &str = "conditions support &&, ||, !, ==, !=, <, <=, >, >=, `in` with a list, \
    ?:, startsWith, endsWith, contains, matches and size over person attributes and \
    string, int and bool literals";

/// The longest condition accepted, in characters (real ones are a few hundred).
pub const MAX_CONDITION_CHARS: usize = 10_000;

/// The deepest expression tree accepted; checking and evaluation recurse over it.
pub const MAX_DEPTH: usize = 64;

/// Parse and check one condition. On success the typed tree; otherwise every problem found.
pub fn check_condition(schema: &Schema, source: &str) -> Result<TExpr, Vec<CondProblem>> {
    if source.chars().count() > MAX_CONDITION_CHARS {
        return Err(vec![CondProblem {
            offset: 0,
            message: format!("the condition is longer than {MAX_CONDITION_CHARS} characters"),
            hint: "split it into several rules".into(),
        }]);
    }
    let parsed = cel::parser::Parser::default()
        .max_recursion_depth(64)
        .parse_with_source_info(source);
    let (expr, info) = match parsed {
        Ok(x) => x,
        Err(errs) => {
            let problems = errs
                .errors
                .iter()
                .map(|e| CondProblem {
                    offset: char_offset_of(source, e.pos),
                    message: format!("CEL syntax error: {}", clean_syntax_message(&e.msg)),
                    hint: String::new(),
                })
                .collect();
            return Err(problems);
        }
    };
    if depth_exceeds(&expr, MAX_DEPTH) {
        return Err(vec![CondProblem {
            offset: 0,
            message: format!("the condition is nested more than {MAX_DEPTH} levels deep"),
            hint: "split it into several rules".into(),
        }]);
    }
    let mut c = Checker {
        schema,
        source,
        info: &info,
        problems: Vec::new(),
    };
    let checked = c.check(&expr);
    match checked {
        Some(t) if c.problems.is_empty() => {
            if t.ty() == Ty::Bool {
                Ok(t)
            } else {
                Err(vec![CondProblem {
                    offset: c.char_offset(c.start(&expr)),
                    message: format!(
                        "a condition must be a bool, but `{}` is a {}",
                        short(&t, schema),
                        t.ty()
                    ),
                    hint: "compare it, for example person.department == \"Engineering\"".into(),
                }])
            }
        }
        _ => Err(c.problems),
    }
}

/// Is the tree deeper than `limit` (counting the nodes the checker descends into)?
/// Iterative, so that a pathological condition cannot overflow the stack here.
fn depth_exceeds(e: &IdedExpr, limit: usize) -> bool {
    let mut stack = vec![(e, 1usize)];
    while let Some((e, d)) = stack.pop() {
        if d > limit {
            return true;
        }
        match &e.expr {
            Expr::Call(c) => {
                stack.extend(c.target.iter().map(|t| (&**t, d + 1)));
                stack.extend(c.args.iter().map(|a| (a, d + 1)));
            }
            Expr::Select(s) => stack.push((&s.operand, d + 1)),
            Expr::List(l) => stack.extend(l.elements.iter().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    false
}

/// Turn the parser's (line, column) (1-based, in characters) into a character offset.
fn char_offset_of(source: &str, (line, col): (isize, isize)) -> usize {
    let mut offset = 0usize;
    let line = line.max(1) as usize;
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return offset + (col.max(1) as usize - 1).min(l.chars().count());
        }
        offset += l.chars().count();
    }
    offset
}

/// The ANTLR messages list every token it expected; keep them short.
fn clean_syntax_message(msg: &str) -> String {
    if msg.contains("Recursion limit") {
        return "the condition is nested too deeply".into();
    }
    let msg = msg.strip_prefix("Syntax error: ").unwrap_or(msg);
    match msg.find(" expecting {") {
        Some(i) if msg.len() > i + 60 => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

/// A short rendering of an expression for messages.
fn short(e: &TExpr, schema: &Schema) -> String {
    let s = e.display(schema).to_string();
    if s.chars().count() > 48 {
        let cut: String = s.chars().take(45).collect();
        format!("{cut}...")
    } else {
        s
    }
}

struct Checker<'a> {
    schema: &'a Schema,
    source: &'a str,
    info: &'a SourceInfo,
    problems: Vec<CondProblem>,
}

impl Checker<'_> {
    /// The character offset of a byte offset into the condition (the parser records
    /// node positions in bytes, syntax errors in characters).
    fn char_offset(&self, byte: usize) -> usize {
        let mut b = byte.min(self.source.len());
        while !self.source.is_char_boundary(b) {
            b -= 1;
        }
        self.source[..b].chars().count()
    }

    /// The first byte offset of an expression (its leftmost token).
    fn start(&self, e: &IdedExpr) -> usize {
        let mut best = self
            .info
            .offset_for(e.id)
            .map(|(s, _)| s as usize)
            .unwrap_or(usize::MAX);
        let mut visit = |x: &IdedExpr| best = best.min(self.start(x));
        match &e.expr {
            Expr::Call(c) => {
                if let Some(t) = &c.target {
                    visit(t);
                }
                c.args.iter().for_each(visit);
            }
            Expr::Select(s) => visit(&s.operand),
            Expr::List(l) => l.elements.iter().for_each(visit),
            _ => {}
        }
        if best == usize::MAX { 0 } else { best }
    }

    /// Record a problem at a byte offset of the condition.
    fn problem(&mut self, at: usize, message: impl Into<String>, hint: impl Into<String>) {
        self.problems.push(CondProblem {
            offset: self.char_offset(at),
            message: message.into(),
            hint: hint.into(),
        });
    }

    fn unsupported(&mut self, e: &IdedExpr, what: &str) -> Option<TExpr> {
        let at = self.start(e);
        self.problem(
            at,
            format!("{what} is not supported in policy conditions"),
            SUPPORTED,
        );
        None
    }

    fn check(&mut self, e: &IdedExpr) -> Option<TExpr> {
        match &e.expr {
            Expr::Literal(l) => match l {
                LiteralValue::Boolean(b) => Some(TExpr::Bool(*b.inner())),
                LiteralValue::Int(i) => Some(TExpr::Int(*i.inner())),
                LiteralValue::String(s) => Some(TExpr::Str(s.inner().to_string())),
                LiteralValue::UInt(_) => self.unsupported(e, "an unsigned int literal"),
                LiteralValue::Double(_) => self.unsupported(e, "a floating-point literal"),
                LiteralValue::Bytes(_) => self.unsupported(e, "a bytes literal"),
                LiteralValue::Null => self.unsupported(e, "null"),
            },
            Expr::Ident(name) => {
                let at = self.start(e);
                if name == "person" {
                    self.problem(
                        at,
                        "`person` on its own is not a value",
                        "name an attribute, for example person.department",
                    );
                } else {
                    let path = format!("person.{name}");
                    let guess = if self.schema.lookup(&path).is_some() {
                        Some(path)
                    } else {
                        self.schema.suggest(&path).map(str::to_string)
                    };
                    let message = match guess {
                        Some(g) => format!("unknown name {name}; did you mean {g}?"),
                        None => format!("unknown name {name}"),
                    };
                    self.problem(
                        at,
                        message,
                        "conditions read person attributes as person.NAME",
                    );
                }
                None
            }
            Expr::Select(s) if s.test => self.unsupported(e, "has()"),
            Expr::Select(_) => self.check_select(e),
            Expr::List(l) => {
                if !l.optional_indices.is_empty() {
                    return self.unsupported(e, "an optional list element");
                }
                let mut out = Vec::new();
                let mut ok = true;
                for x in &l.elements {
                    match self.check(x) {
                        Some(t) => out.push(t),
                        None => ok = false,
                    }
                }
                ok.then_some(TExpr::List(out))
            }
            Expr::Map(_) => self.unsupported(e, "a map literal"),
            Expr::Struct(_) => self.unsupported(e, "a message literal"),
            Expr::Comprehension(_) => {
                self.unsupported(e, "a macro (all, exists, exists_one, map, filter)")
            }
            Expr::Unspecified => self.unsupported(e, "this expression"),
            Expr::Call(c) => self.check_call(e, &c.func_name, c.target.as_deref(), &c.args),
        }
    }

    fn check_select(&mut self, e: &IdedExpr) -> Option<TExpr> {
        let at = self.start(e);
        // Spell the qualified name, root first.
        let mut segs = Vec::new();
        let mut cur = e;
        loop {
            match &cur.expr {
                Expr::Select(s) if !s.test => {
                    segs.push(s.field.as_str());
                    cur = &s.operand;
                }
                Expr::Ident(root) => {
                    segs.push(root.as_str());
                    break;
                }
                _ => {
                    self.problem(
                        at,
                        "selecting a field is only supported on person",
                        "write person.NAME or person.custom.NAME",
                    );
                    return None;
                }
            }
        }
        segs.reverse();
        let path = segs.join(".");
        if segs[0] != "person" {
            let guess = self.schema.suggest(&format!("person.{path}"));
            let message = match guess {
                Some(g) => format!("unknown name {path}; did you mean {g}?"),
                None => format!("unknown name {}", segs[0]),
            };
            self.problem(
                at,
                message,
                "conditions read person attributes as person.NAME",
            );
            return None;
        }
        if let Some((id, f)) = self.schema.lookup(&path) {
            return Some(TExpr::Attr(id, f.ty));
        }
        if path == "person.custom" {
            self.problem(
                at,
                "person.custom on its own is not a value",
                "name a declared custom attribute, for example person.custom.clearance",
            );
            return None;
        }
        let message = match self.schema.suggest(&path) {
            Some(g) => format!("unknown attribute {path}; did you mean {g}?"),
            None => format!("unknown attribute {path}"),
        };
        let hint = if path.starts_with("person.custom.") {
            "declare custom attributes in policies.toml under [attributes], e.g. clearance = \"string\""
                .to_string()
        } else {
            let aliases: Vec<&str> = self
                .schema
                .aliases()
                .filter_map(|(a, _)| a.strip_prefix("person."))
                .collect();
            let also = if aliases.is_empty() {
                String::new()
            } else {
                format!("; the HR export's names work too: {}", aliases.join(", "))
            };
            format!(
                "person attributes are hris_id, given_name, family_name, preferred_name, display_name, \
                 email, department, title, manager_id, location, cost_center, status, start_date, \
                 end_date, and custom.NAME for attributes declared under [attributes]{also}"
            )
        };
        self.problem(at, message, hint);
        None
    }

    fn check_call(
        &mut self,
        e: &IdedExpr,
        func: &str,
        target: Option<&IdedExpr>,
        args: &[IdedExpr],
    ) -> Option<TExpr> {
        let at = self.start(e);
        match (func, target, args) {
            (operators::LOGICAL_AND | operators::LOGICAL_OR, None, [a, b]) => {
                let is_and = func == operators::LOGICAL_AND;
                let sym = if is_and { "&&" } else { "||" };
                let ta = self.check_bool_operand(a, sym);
                let tb = self.check_bool_operand(b, sym);
                let (ta, tb) = (ta?, tb?);
                let mut parts = Vec::new();
                for t in [ta, tb] {
                    match (t, is_and) {
                        (TExpr::And(xs), true) | (TExpr::Or(xs), false) => parts.extend(xs),
                        (t, _) => parts.push(t),
                    }
                }
                Some(if is_and {
                    TExpr::And(parts)
                } else {
                    TExpr::Or(parts)
                })
            }
            (operators::LOGICAL_NOT, None, [a]) => {
                let t = self.check_bool_operand(a, "!")?;
                Some(TExpr::Not(Box::new(t)))
            }
            (operators::NEGATE, None, [a]) => match self.check(a)? {
                TExpr::Int(i) => match i.checked_neg() {
                    Some(n) => Some(TExpr::Int(n)),
                    None => {
                        self.problem(at, "integer literal out of range", "");
                        None
                    }
                },
                _ => self.unsupported(e, "arithmetic (-)"),
            },
            (operators::CONDITIONAL, None, [c, a, b]) => {
                let tc = self.check_bool_operand(c, "?:");
                let ta = self.check(a);
                let tb = self.check(b);
                let (tc, ta, tb) = (tc?, ta?, tb?);
                let Some((ta, tb)) = self.unify(&ta, &tb, true) else {
                    let at = self.start(b);
                    self.problem(
                        at,
                        "the two branches of ?: have different types",
                        "both branches must be of the same type",
                    );
                    return None;
                };
                if ta.ty() == Ty::List {
                    return self.unsupported(e, "a list-valued ?:");
                }
                Some(TExpr::Cond(Box::new(tc), Box::new(ta), Box::new(tb)))
            }
            (f, None, [a, b]) if CmpOp::from_function(f).is_some() => {
                let op = CmpOp::from_function(f)?;
                let ta = self.check(a);
                let tb = self.check(b);
                let (ta, tb) = (ta?, tb?);
                self.check_comparison(op, ta, tb, self.start(a), self.start(b))
            }
            (operators::IN, None, [a, b]) => {
                let ta = self.check(a);
                let Expr::List(_) = &b.expr else {
                    let at = self.start(b);
                    self.problem(
                        at,
                        "`in` needs a list literal on its right",
                        "for example person.location in [\"Paris\", \"Berlin\"]",
                    );
                    return None;
                };
                let tb = self.check(b);
                let (ta, TExpr::List(items)) = (ta?, tb?) else {
                    return None;
                };
                if ta.ty() == Ty::List {
                    return self.unsupported(a, "a list on the left of `in`");
                }
                let mut out = Vec::new();
                let mut ok = true;
                let (a_at, b_at) = (self.start(a), self.start(b));
                for item in items {
                    match self.check_comparison(CmpOp::Eq, ta.clone(), item, a_at, b_at) {
                        Some(TExpr::Cmp(_, _, item)) => out.push(*item),
                        _ => ok = false,
                    }
                }
                ok.then(|| TExpr::In(Box::new(ta), out))
            }
            ("startsWith" | "endsWith" | "contains", Some(t), [arg]) => {
                let func = match func {
                    "startsWith" => StrFn::StartsWith,
                    "endsWith" => StrFn::EndsWith,
                    _ => StrFn::Contains,
                };
                let tt = self.check_str_operand(t, func.name());
                let ta = self.check_str_operand(arg, func.name());
                Some(TExpr::StrFn(func, Box::new(tt?), Box::new(ta?)))
            }
            ("matches", Some(subject), [pattern]) | ("matches", None, [subject, pattern]) => {
                let ts = self.check_str_operand(subject, "matches");
                let tp = self.check(pattern)?;
                let p_at = self.start(pattern);
                let TExpr::Str(p) = tp else {
                    self.problem(
                        p_at,
                        "matches() needs its pattern as a string literal",
                        "for example person.title.matches(\"^(Senior|Staff) \")",
                    );
                    return None;
                };
                match regex::Regex::new(&p) {
                    Ok(re) => Some(TExpr::Matches(Box::new(ts?), Box::new(re))),
                    Err(err) => {
                        let first = err.to_string();
                        let first = first.lines().last().unwrap_or("").trim().to_string();
                        self.problem(
                            p_at,
                            format!("invalid regular expression {p:?}: {first}"),
                            "matches() uses RE2 syntax (the regex crate)",
                        );
                        None
                    }
                }
            }
            ("size", Some(x), []) | ("size", None, [x]) => {
                let t = self.check(x)?;
                match t.ty() {
                    Ty::Str | Ty::List => Some(TExpr::Size(Box::new(t))),
                    other => {
                        let at = self.start(x);
                        self.problem(
                            at,
                            format!(
                                "size() needs a string or a list, but `{}` is a {other}",
                                short(&t, self.schema)
                            ),
                            "",
                        );
                        None
                    }
                }
            }
            ("startsWith" | "endsWith" | "contains" | "matches" | "size", _, _) => {
                self.problem(
                    at,
                    format!("wrong use of {func}()"),
                    "write x.startsWith(\"a\"), x.endsWith(\"a\"), x.contains(\"a\"), \
                     x.matches(\"re\") or size(x)",
                );
                None
            }
            (
                operators::ADD
                | operators::SUBSTRACT
                | operators::MULTIPLY
                | operators::DIVIDE
                | operators::MODULO,
                _,
                _,
            ) => {
                let sym = match func {
                    operators::ADD => "+",
                    operators::SUBSTRACT => "-",
                    operators::MULTIPLY => "*",
                    operators::DIVIDE => "/",
                    _ => "%",
                };
                self.unsupported(e, &format!("arithmetic ({sym})"))
            }
            (operators::INDEX | operators::OPT_INDEX, _, _) => {
                self.problem(
                    at,
                    "indexing with [] is not supported in policy conditions",
                    "write person.NAME or person.custom.NAME",
                );
                None
            }
            (operators::OPT_SELECT, _, _) => self.unsupported(e, "optional selection (.?)"),
            _ => {
                let name = func.trim_matches('_');
                self.unsupported(e, &format!("the function {name}()"))
            }
        }
    }

    fn check_bool_operand(&mut self, e: &IdedExpr, op: &str) -> Option<TExpr> {
        let t = self.check(e)?;
        if t.ty() == Ty::Bool {
            return Some(t);
        }
        let at = self.start(e);
        let hint = if t.ty() == Ty::Str {
            "compare it, for example person.status == \"active\""
        } else {
            "compare it with == or another operator to get a bool"
        };
        self.problem(
            at,
            format!(
                "{op} needs bool operands, but `{}` is a {}",
                short(&t, self.schema),
                t.ty()
            ),
            hint,
        );
        None
    }

    fn check_str_operand(&mut self, e: &IdedExpr, func: &str) -> Option<TExpr> {
        let t = self.check(e)?;
        if t.ty() == Ty::Str {
            return Some(t);
        }
        let at = self.start(e);
        self.problem(
            at,
            format!(
                "{func}() needs strings, but `{}` is a {}",
                short(&t, self.schema),
                t.ty()
            ),
            if t.ty() == Ty::Date {
                "compare dates with <, <=, >, >= against \"YYYY-MM-DD\" literals"
            } else {
                ""
            },
        );
        None
    }

    /// Bring two operands to one type: a string literal next to a date becomes a date
    /// literal. `None` when the types cannot agree (or a literal is not a valid date,
    /// which `date_literal` reports).
    fn unify(&mut self, a: &TExpr, b: &TExpr, allow_empty_date: bool) -> Option<(TExpr, TExpr)> {
        match (a.ty(), b.ty()) {
            (x, y) if x == y => Some((a.clone(), b.clone())),
            (Ty::Date, Ty::Str) => match b {
                TExpr::Str(s) => Some((a.clone(), date_literal(s, allow_empty_date).ok()?)),
                _ => None,
            },
            (Ty::Str, Ty::Date) => match a {
                TExpr::Str(s) => Some((date_literal(s, allow_empty_date).ok()?, b.clone())),
                _ => None,
            },
            _ => None,
        }
    }

    fn check_comparison(
        &mut self,
        op: CmpOp,
        a: TExpr,
        b: TExpr,
        a_at: usize,
        b_at: usize,
    ) -> Option<TExpr> {
        let sym = op.symbol();
        if a.ty() == Ty::List || b.ty() == Ty::List {
            let at = if a.ty() == Ty::List { a_at } else { b_at };
            self.problem(
                at,
                format!("a list cannot be compared with {sym}"),
                "lists are only supported on the right of `in` and in size()",
            );
            return None;
        }
        let equality = matches!(op, CmpOp::Eq | CmpOp::Ne);
        // A string literal compared with a date must itself be a date.
        for (lit, other, at) in [(&a, &b, a_at), (&b, &a, b_at)] {
            if let (TExpr::Str(s), Ty::Date) = (lit, other.ty())
                && let Err(msg) = date_literal(s, equality)
            {
                self.problem(
                    at,
                    msg,
                    "write dates as \"YYYY-MM-DD\"; \"\" (with == or !=) means no date",
                );
                return None;
            }
        }
        let (ta, tb) = (a.ty(), b.ty());
        let Some((a, b)) = self.unify(&a, &b, equality) else {
            let at = if matches!(a, TExpr::Attr(..)) {
                b_at
            } else {
                a_at
            };
            let hint = match (&a, &b) {
                (_, TExpr::Int(i)) | (TExpr::Int(i), _) if ta == Ty::Str || tb == Ty::Str => {
                    format!("quote the value to compare strings: \"{i}\"")
                }
                _ => format!("both sides of {sym} must have the same type"),
            };
            self.problem(
                at,
                format!(
                    "cannot compare `{}` ({ta}) with `{}` ({tb})",
                    short(&a, self.schema),
                    short(&b, self.schema)
                ),
                hint,
            );
            return None;
        };
        if a.ty() == Ty::Bool && !equality {
            self.problem(
                a_at,
                format!("bools cannot be ordered with {sym}"),
                "compare bools with == or !=",
            );
            return None;
        }
        // person.status can only hold the four employment statuses.
        for (attr, lit, at) in [(&a, &b, b_at), (&b, &a, a_at)] {
            if let (TExpr::Attr(id, _), TExpr::Str(s)) = (attr, lit)
                && self.schema.field(*id).path == "person.status"
                && equality
                && s.parse::<EmploymentStatus>().map(|st| st.as_str()) != Ok(s.as_str())
            {
                let names: Vec<&str> = EmploymentStatus::ALL.iter().map(|s| s.as_str()).collect();
                let guess = names
                    .iter()
                    .min_by_key(|n| super::schema::levenshtein(s, n))
                    .filter(|n| super::schema::levenshtein(s, n) <= 2);
                let message = match guess {
                    Some(g) => format!("person.status is never {s:?}; did you mean {g:?}?"),
                    None => format!("person.status is never {s:?}"),
                };
                self.problem(at, message, format!("statuses are {}", names.join(", ")));
                return None;
            }
        }
        Some(TExpr::Cmp(op, Box::new(a), Box::new(b)))
    }
}

/// A date literal from a string literal: exactly `YYYY-MM-DD`, or `""` where allowed.
fn date_literal(s: &str, allow_empty: bool) -> Result<TExpr, String> {
    if s.is_empty() {
        return if allow_empty {
            Ok(TExpr::Date(None))
        } else {
            Err("\"\" is not a date; only == and != can test for a missing date".into())
        };
    }
    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) if d.format("%Y-%m-%d").to_string() == s => Ok(TExpr::Date(Some(d))),
        _ => Err(format!("{s:?} is not a date in the form YYYY-MM-DD")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::new(&[
            ("clearance".into(), Ty::Str),
            ("level".into(), Ty::Int),
            ("vip".into(), Ty::Bool),
        ])
    }

    fn err(src: &str) -> Vec<CondProblem> {
        match check_condition(&schema(), src) {
            Ok(t) => panic!("{src} checked as {t:?}"),
            Err(p) => p,
        }
    }

    #[test]
    fn accepts_the_supported_subset() {
        for src in [
            r#"person.department == "Engineering" && person.status == "active""#,
            r#"person.location in ["Paris", "Berlin"] || !person.custom.vip"#,
            r#"person.title.startsWith("Senior") && size(person.title) > 3"#,
            r#"person.start_date >= "2024-01-01" && person.end_date == """#,
            r#"person.custom.level >= -2 ? person.email.endsWith("@x.com") : false"#,
            r#"person.title.matches("^(Staff|Principal) ") && person.custom.clearance != """#,
            r#"(person.custom.vip == true) == (person.department.contains("Ops"))"#,
        ] {
            if let Err(p) = check_condition(&schema(), src) {
                panic!("{src}: {p:?}");
            }
        }
    }

    #[test]
    fn unknown_attribute_suggests() {
        let p = err(r#"person.status == "active" && person.departmnt == "Sales""#);
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0].message,
            "unknown attribute person.departmnt; did you mean person.department?"
        );
        assert_eq!(p[0].offset, 29);
    }

    #[test]
    fn offsets_count_characters() {
        let p = err(r#""é" == person.departmnt"#);
        assert_eq!(p[0].offset, 7, "{p:?}");
        let p = err("\"é\" == person.department ==");
        assert_eq!(p[0].offset, 27, "{p:?}");
    }

    #[test]
    fn type_errors_are_reported() {
        let p = err(r#"person.department == 3"#);
        assert!(p[0].message.contains("cannot compare"), "{p:?}");
        assert!(p[0].hint.contains("\"3\""), "{p:?}");
        assert_eq!(p[0].offset, 21);
        let p = err(r#"person.status && true"#);
        assert!(p[0].message.contains("&& needs bool operands"), "{p:?}");
        let p = err(r#"person.start_date > "x""#);
        assert!(p[0].message.contains("not a date"), "{p:?}");
        let p = err(r#"person.department"#);
        assert!(p[0].message.contains("must be a bool"), "{p:?}");
        let p = err(r#"person.status == "actve""#);
        assert!(p[0].message.contains("did you mean \"active\""), "{p:?}");
    }

    #[test]
    fn independent_problems_are_all_reported() {
        let p = err(r#"person.departmnt == "x" || person.titel == "y""#);
        assert_eq!(p.len(), 2, "{p:?}");
    }

    #[test]
    fn unsupported_constructs_are_named() {
        for (src, what) in [
            ("has(person.title)", "has()"),
            ("person.custom.level + 1 > 2", "arithmetic (+)"),
            ("[1, 2].exists(x, x > 1)", "macro"),
            ("person.title.lowerAscii() == \"x\"", "lowerAscii"),
            ("2.5 > 1.0", "floating-point"),
        ] {
            let p = err(src);
            assert!(
                p[0].message.contains(what) && p[0].message.contains("not supported"),
                "{src}: {p:?}"
            );
        }
    }

    #[test]
    fn syntax_errors_have_offsets() {
        let p = err("person.department ==\n  ");
        assert!(p[0].message.starts_with("CEL syntax error"), "{p:?}");
        let p = err("person.department = \"x\"");
        assert_eq!(p[0].offset, 18, "{p:?}");
    }

    #[test]
    fn pathological_conditions_are_rejected_without_overflowing() {
        let chain = format!("{}true", "true == ".repeat(1200));
        assert!(
            err(&chain)[0]
                .message
                .contains("nested more than 64 levels")
        );
        let parens = format!("{}true{}", "(".repeat(300), ")".repeat(300));
        assert_eq!(
            err(&parens)[0].message,
            "CEL syntax error: the condition is nested too deeply"
        );
        let long = format!("{}true", "true && ".repeat(2000));
        assert!(err(&long)[0].message.contains("longer than"));
        // Deep but balanced: && chains are built as balanced trees.
        let wide = format!("{}true", "true && ".repeat(1000));
        assert!(check_condition(&schema(), &wide).is_ok());
    }

    #[test]
    fn display_round_trips_precedence() {
        let s = schema();
        let t = check_condition(
            &s,
            r#"(person.department == "a" || person.title == "b") && !(person.custom.vip)"#,
        )
        .unwrap();
        assert_eq!(
            t.display(&s).to_string(),
            r#"(person.department == "a" || person.title == "b") && !person.custom.vip"#
        );
    }
}

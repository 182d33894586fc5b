//! The fast evaluator: checked conditions compiled into small typed node trees over a
//! [`Record`], and an index that only tests a person against the rules that can match.
//!
//! - String equality with a literal becomes an integer compare: every literal is interned
//!   once at load, and a person's value in each compared field is looked up once per
//!   evaluation (a value that no rule mentions gets [`NO_SYM`], which equals nothing).
//! - `x in [..]` and `||` chains of equalities on one field become one set test.
//! - Each rule is filed under one of its top-level equality conjuncts (for example
//!   `person.department == "X"`), choosing the field with the most distinct values across
//!   all rules. A person is tested only against the rules filed under their own values,
//!   plus the rules that have no such conjunct.
//!
//! The differential tests in `policy::differential` check this against the cel crate's
//! interpreter on random people and random conditions.

use super::check::{CmpOp, StrFn, TExpr};
use super::schema::{Record, Schema, Ty, date_days};
use std::collections::HashMap;

/// The symbol of a string no rule compares with.
pub const NO_SYM: u32 = u32::MAX;

/// A compiled bool-valued node.
#[derive(Debug, Clone)]
pub enum B {
    Const(bool),
    /// A custom bool attribute.
    Field(u16),
    /// String slot equals an interned literal.
    SymEq(u16, u32),
    /// String slot is one of these interned literals (sorted).
    SymIn(u16, Box<[u32]>),
    Not(Box<B>),
    And(Box<[B]>),
    Or(Box<[B]>),
    Cond(Box<(B, B, B)>),
    Str(CmpOp, S, S),
    Int(CmpOp, I, I),
    Date(CmpOp, D, D),
    /// `a == b` (true) or `a != b` (false) on bools.
    BoolEq(bool, Box<(B, B)>),
    StrFn(StrFn, S, S),
    Matches(S, Box<regex::Regex>),
}

/// A compiled string-valued node.
#[derive(Debug, Clone)]
pub enum S {
    Field(u16),
    Lit(Box<str>),
    Cond(Box<(B, S, S)>),
}

/// A compiled int-valued node.
#[derive(Debug, Clone)]
pub enum I {
    Field(u16),
    Lit(i64),
    /// Number of Unicode code points, as CEL's size().
    Size(S),
    Cond(Box<(B, I, I)>),
}

/// A compiled date-valued node (day numbers; absent is the smallest).
#[derive(Debug, Clone)]
pub enum D {
    Field(u16),
    Lit(i32),
    Cond(Box<(B, D, D)>),
}

impl B {
    #[inline]
    pub fn eval(&self, r: &Record<'_>) -> bool {
        match self {
            B::Const(b) => *b,
            B::Field(i) => r.bools[*i as usize],
            B::SymEq(slot, sym) => r.syms[*slot as usize] == *sym,
            B::SymIn(slot, syms) => {
                let s = r.syms[*slot as usize];
                if syms.len() <= 8 {
                    syms.contains(&s)
                } else {
                    syms.binary_search(&s).is_ok()
                }
            }
            B::Not(x) => !x.eval(r),
            B::And(xs) => xs.iter().all(|x| x.eval(r)),
            B::Or(xs) => xs.iter().any(|x| x.eval(r)),
            B::Cond(c) => {
                if c.0.eval(r) {
                    c.1.eval(r)
                } else {
                    c.2.eval(r)
                }
            }
            B::Str(op, a, b) => op.holds(a.eval(r).cmp(b.eval(r))),
            B::Int(op, a, b) => op.holds(a.eval(r).cmp(&b.eval(r))),
            B::Date(op, a, b) => op.holds(a.eval(r).cmp(&b.eval(r))),
            B::BoolEq(eq, ab) => (ab.0.eval(r) == ab.1.eval(r)) == *eq,
            B::StrFn(f, a, b) => f.apply(a.eval(r), b.eval(r)),
            B::Matches(a, re) => re.is_match(a.eval(r)),
        }
    }

    /// Rough cost, to test cheap conjuncts first.
    fn cost(&self) -> u32 {
        match self {
            B::Const(_) => 0,
            B::Field(_) | B::SymEq(..) | B::SymIn(..) => 1,
            B::Not(x) => x.cost(),
            B::Int(..) | B::Date(..) => 2,
            B::Str(..) | B::StrFn(..) | B::BoolEq(..) => 4,
            B::And(xs) | B::Or(xs) => xs.iter().map(B::cost).sum::<u32>() + 1,
            B::Cond(c) => c.0.cost() + c.1.cost().max(c.2.cost()) + 1,
            B::Matches(..) => 50,
        }
    }
}

impl S {
    #[inline]
    pub fn eval<'a>(&'a self, r: &'a Record<'_>) -> &'a str {
        match self {
            S::Field(i) => r.strs[*i as usize],
            S::Lit(s) => s,
            S::Cond(c) => {
                if c.0.eval(r) {
                    c.1.eval(r)
                } else {
                    c.2.eval(r)
                }
            }
        }
    }
}

impl I {
    #[inline]
    pub fn eval(&self, r: &Record<'_>) -> i64 {
        match self {
            I::Field(i) => r.ints[*i as usize],
            I::Lit(v) => *v,
            I::Size(s) => s.eval(r).chars().count() as i64,
            I::Cond(c) => {
                if c.0.eval(r) {
                    c.1.eval(r)
                } else {
                    c.2.eval(r)
                }
            }
        }
    }
}

impl D {
    #[inline]
    pub fn eval(&self, r: &Record<'_>) -> i32 {
        match self {
            D::Field(i) => r.dates[*i as usize],
            D::Lit(v) => *v,
            D::Cond(c) => {
                if c.0.eval(r) {
                    c.1.eval(r)
                } else {
                    c.2.eval(r)
                }
            }
        }
    }
}

/// Compiled conditions plus the rule index. Immutable after load, so it can be shared.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    interner: HashMap<Box<str>, u32>,
    /// String slots whose symbol a record needs (compared by equality somewhere).
    interned_slots: Vec<u16>,
    conds: Vec<B>,
    /// Rules with no indexable conjunct: tested for everyone.
    always: Vec<u32>,
    /// Per indexed string slot: rules by the symbol of the person's value.
    index: Vec<(u16, Vec<Vec<u32>>)>,
}

impl Engine {
    /// Compile every rule's condition and build the index.
    pub fn build(schema: &Schema, conds: &[&TExpr]) -> Engine {
        let mut c = Compiler {
            schema,
            interner: HashMap::new(),
            slots: Vec::new(),
        };
        let compiled: Vec<B> = conds.iter().map(|t| c.bool(t)).collect();
        let mut e = Engine {
            interner: c.interner,
            interned_slots: c.slots,
            conds: compiled,
            always: Vec::new(),
            index: Vec::new(),
        };
        e.build_index();
        e
    }

    fn build_index(&mut self) {
        // Distinct literals per slot across all rules: a proxy for how selective an
        // equality on that slot is.
        let mut distinct: HashMap<u16, std::collections::HashSet<u32>> = HashMap::new();
        for b in &self.conds {
            for (slot, syms) in index_keys(b) {
                distinct
                    .entry(slot)
                    .or_default()
                    .extend(syms.iter().copied());
            }
        }
        let nsyms = self.interner.len();
        for (ri, b) in self.conds.iter().enumerate() {
            let best = index_keys(b).into_iter().max_by(|x, y| {
                let score = |(slot, syms): &(u16, &[u32])| {
                    distinct.get(slot).map_or(0, |d| d.len()) as f64 / syms.len().max(1) as f64
                };
                score(x).total_cmp(&score(y))
            });
            match best {
                None => self.always.push(ri as u32),
                Some((slot, syms)) => {
                    let pos = match self.index.iter().position(|(s, _)| *s == slot) {
                        Some(p) => p,
                        None => {
                            self.index.push((slot, vec![Vec::new(); nsyms]));
                            self.index.len() - 1
                        }
                    };
                    for &sym in syms {
                        self.index[pos].1[sym as usize].push(ri as u32);
                    }
                }
            }
        }
    }

    /// Read a person into slots, with the symbols of the compared fields.
    pub fn record<'p>(&self, schema: &Schema, p: &'p crate::model::Person) -> Record<'p> {
        let mut r = schema.record(p);
        r.syms = vec![NO_SYM; r.strs.len()];
        for &slot in &self.interned_slots {
            let v = r.strs[slot as usize];
            r.syms[slot as usize] = self.interner.get(v).copied().unwrap_or(NO_SYM);
        }
        r
    }

    /// The indices of the rules whose condition holds, ascending.
    pub fn matching(&self, r: &Record<'_>, out: &mut Vec<u32>) {
        out.clear();
        for &ri in &self.always {
            if self.conds[ri as usize].eval(r) {
                out.push(ri);
            }
        }
        for (slot, buckets) in &self.index {
            let sym = r.syms[*slot as usize];
            if let Some(rules) = buckets.get(sym as usize) {
                for &ri in rules {
                    if self.conds[ri as usize].eval(r) {
                        out.push(ri);
                    }
                }
            }
        }
        out.sort_unstable();
    }

    /// Does rule `ri` match (no index)?
    pub fn rule_matches(&self, ri: usize, r: &Record<'_>) -> bool {
        self.conds.get(ri).is_some_and(|b| b.eval(r))
    }

    /// How many rules are tested for everyone, and how many are indexed.
    pub fn index_stats(&self) -> (usize, usize) {
        (self.always.len(), self.conds.len() - self.always.len())
    }
}

/// The equality conjuncts at the top of a condition: (slot, symbols).
fn index_keys(b: &B) -> Vec<(u16, &[u32])> {
    fn one(x: &B) -> Option<(u16, &[u32])> {
        match x {
            B::SymEq(slot, sym) => Some((*slot, std::slice::from_ref(sym))),
            B::SymIn(slot, syms) => Some((*slot, &syms[..])),
            _ => None,
        }
    }
    match b {
        B::And(xs) => xs.iter().filter_map(one).collect(),
        x => one(x).into_iter().collect(),
    }
}

struct Compiler<'a> {
    schema: &'a Schema,
    interner: HashMap<Box<str>, u32>,
    slots: Vec<u16>,
}

impl Compiler<'_> {
    fn intern(&mut self, slot: u16, s: &str) -> u32 {
        if !self.slots.contains(&slot) {
            self.slots.push(slot);
        }
        let next = self.interner.len() as u32;
        *self.interner.entry(s.into()).or_insert(next)
    }

    fn str_slot(&self, t: &TExpr) -> Option<u16> {
        match t {
            TExpr::Attr(id, Ty::Str) => Some(self.schema.field(*id).slot),
            _ => None,
        }
    }

    fn bool(&mut self, t: &TExpr) -> B {
        match t {
            TExpr::Bool(b) => B::Const(*b),
            TExpr::Attr(id, _) => B::Field(self.schema.field(*id).slot),
            TExpr::Not(x) => match self.bool(x) {
                B::Const(b) => B::Const(!b),
                b => B::Not(Box::new(b)),
            },
            TExpr::And(xs) => {
                let mut parts: Vec<B> = Vec::new();
                for x in xs {
                    match self.bool(x) {
                        B::Const(true) => {}
                        B::Const(false) => return B::Const(false),
                        B::And(inner) => parts.extend(inner.into_vec()),
                        b => parts.push(b),
                    }
                }
                // No operand can fail or have effects, so order is free: cheap tests first.
                parts.sort_by_key(B::cost);
                match parts.len() {
                    0 => B::Const(true),
                    1 => parts.pop().unwrap_or(B::Const(true)),
                    _ => B::And(parts.into_boxed_slice()),
                }
            }
            TExpr::Or(xs) => {
                let mut parts = Vec::new();
                for x in xs {
                    match self.bool(x) {
                        B::Const(false) => {}
                        B::Const(true) => return B::Const(true),
                        B::Or(inner) => parts.extend(inner.into_vec()),
                        b => parts.push(b),
                    }
                }
                self.or(parts)
            }
            TExpr::Cond(c, a, b) => {
                let c = self.bool(c);
                let (a, b) = (self.bool(a), self.bool(b));
                match c {
                    B::Const(true) => a,
                    B::Const(false) => b,
                    c => B::Cond(Box::new((c, a, b))),
                }
            }
            TExpr::Cmp(op, a, b) => self.cmp(*op, a, b),
            TExpr::In(a, items) => {
                // `x in [a, b]` is `x == a || x == b`: nothing can fail, so it is exact.
                let parts = items
                    .iter()
                    .map(|item| self.cmp(CmpOp::Eq, a, item))
                    .collect();
                self.or(parts)
            }
            TExpr::StrFn(f, a, b) => B::StrFn(*f, self.str(a), self.str(b)),
            TExpr::Matches(a, re) => B::Matches(self.str(a), re.clone()),
            // The checker only lets bool-typed nodes reach here.
            TExpr::Int(_) | TExpr::Str(_) | TExpr::Date(_) | TExpr::List(_) | TExpr::Size(_) => {
                B::Const(false)
            }
        }
    }

    /// An `||`: equality tests on one slot merge into one set test.
    fn or(&mut self, parts: Vec<B>) -> B {
        let mut sets: Vec<(u16, Vec<u32>)> = Vec::new();
        let mut rest = Vec::new();
        for p in parts {
            match p {
                B::SymEq(slot, sym) => match sets.iter_mut().find(|(s, _)| *s == slot) {
                    Some((_, v)) => v.push(sym),
                    None => sets.push((slot, vec![sym])),
                },
                B::SymIn(slot, syms) => match sets.iter_mut().find(|(s, _)| *s == slot) {
                    Some((_, v)) => v.extend(syms.iter()),
                    None => sets.push((slot, syms.into_vec())),
                },
                B::Const(true) => return B::Const(true),
                B::Const(false) => {}
                other => rest.push(other),
            }
        }
        let mut out: Vec<B> = sets
            .into_iter()
            .map(|(slot, mut syms)| {
                syms.sort_unstable();
                syms.dedup();
                if syms.len() == 1 {
                    B::SymEq(slot, syms[0])
                } else {
                    B::SymIn(slot, syms.into_boxed_slice())
                }
            })
            .collect();
        rest.sort_by_key(B::cost);
        out.extend(rest);
        match out.len() {
            0 => B::Const(false),
            1 => out.pop().unwrap_or(B::Const(false)),
            _ => B::Or(out.into_boxed_slice()),
        }
    }

    fn cmp(&mut self, op: CmpOp, a: &TExpr, b: &TExpr) -> B {
        match a.ty() {
            Ty::Str => {
                if matches!(op, CmpOp::Eq | CmpOp::Ne) {
                    let pair = match (self.str_slot(a), b, self.str_slot(b), a) {
                        (Some(slot), TExpr::Str(lit), _, _) => Some((slot, lit)),
                        (_, _, Some(slot), TExpr::Str(lit)) => Some((slot, lit)),
                        _ => None,
                    };
                    if let Some((slot, lit)) = pair {
                        let eq = B::SymEq(slot, self.intern(slot, lit));
                        return if op == CmpOp::Eq {
                            eq
                        } else {
                            B::Not(Box::new(eq))
                        };
                    }
                }
                B::Str(op, self.str(a), self.str(b))
            }
            Ty::Int => B::Int(op, self.int(a), self.int(b)),
            Ty::Date => B::Date(op, self.date(a), self.date(b)),
            Ty::Bool => B::BoolEq(op == CmpOp::Eq, Box::new((self.bool(a), self.bool(b)))),
            Ty::List => B::Const(false),
        }
    }

    fn str(&mut self, t: &TExpr) -> S {
        match t {
            TExpr::Str(s) => S::Lit(s.as_str().into()),
            TExpr::Attr(id, _) => S::Field(self.schema.field(*id).slot),
            TExpr::Cond(c, a, b) => S::Cond(Box::new((self.bool(c), self.str(a), self.str(b)))),
            _ => S::Lit("".into()),
        }
    }

    fn int(&mut self, t: &TExpr) -> I {
        match t {
            TExpr::Int(i) => I::Lit(*i),
            TExpr::Attr(id, _) => I::Field(self.schema.field(*id).slot),
            TExpr::Size(x) => match &**x {
                TExpr::List(xs) => I::Lit(xs.len() as i64),
                TExpr::Str(s) => I::Lit(s.chars().count() as i64),
                x => I::Size(self.str(x)),
            },
            TExpr::Cond(c, a, b) => I::Cond(Box::new((self.bool(c), self.int(a), self.int(b)))),
            _ => I::Lit(0),
        }
    }

    fn date(&mut self, t: &TExpr) -> D {
        match t {
            TExpr::Date(d) => D::Lit(date_days(*d)),
            TExpr::Attr(id, _) => D::Field(self.schema.field(*id).slot),
            TExpr::Cond(c, a, b) => D::Cond(Box::new((self.bool(c), self.date(a), self.date(b)))),
            _ => D::Lit(date_days(None)),
        }
    }
}

//! Criterion: drawing the console into a TestBackend (no terminal). The end-to-end figures
//! (first frame with 100k people, draw p99 under a 1,000 ops/s queue, memory) come from
//! `accessdesk bench console`; these guard the draw functions themselves.

#[path = "../tests/console_support/mod.rs"]
mod console_support;

use accessdesk::model::{OperationKind, OperationStatus};
use accessdesk::tui::data::{PeopleIndex, PersonRow};
use accessdesk::tui::reducer::{Msg, update};
use accessdesk::tui::state::AppState;
use accessdesk::tui::views;
use console_support::*;
use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::sync::Arc;

fn big_state(people: usize, ops: usize) -> AppState {
    let mut s = state(200, 60);
    let mut snap = snapshot();
    snap.people = Some(Arc::new(PeopleIndex {
        rows: (0..people)
            .map(|i| PersonRow {
                id: format!("E{i:06}"),
                name: format!("Given{i} Family{}", i % 9973),
                email: format!("p{i}@example.com"),
                department: "Engineering".into(),
                title: "Engineer".into(),
                status: "active".into(),
                rehired: None,
            })
            .collect(),
    }));
    snap.queue = Arc::new(
        (0..ops as i64)
            .map(|i| {
                op(
                    i,
                    "okta",
                    OperationKind::AddMembership,
                    &format!("E{i:06}"),
                    Some("okta:group:eng"),
                    if i % 7 == 0 {
                        OperationStatus::Running
                    } else {
                        OperationStatus::Queued
                    },
                )
            })
            .collect(),
    );
    update(&mut s, Msg::Data(Box::new(snap)), t0());
    s
}

fn draw_benches(c: &mut Criterion) {
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    for (name, key) in [
        ("overview", '1'),
        ("people", '2'),
        ("queue", '3'),
        ("approvals", '4'),
    ] {
        let mut s = big_state(100_000, 20_000);
        update(
            &mut s,
            Msg::Key(crossterm::event::KeyEvent::new(
                crossterm::event::KeyCode::Char(key),
                crossterm::event::KeyModifiers::NONE,
            )),
            t0(),
        );
        c.bench_function(&format!("draw {name} 200x60 (100k people, 20k ops)"), |b| {
            b.iter(|| {
                term.draw(|f| {
                    views::draw(f, &s);
                })
                .unwrap();
            })
        });
    }
    let mut s = big_state(100_000, 20_000);
    c.bench_function("apply a 20k-op snapshot (reducer)", |b| {
        b.iter(|| {
            let mut snap = snapshot();
            snap.people = None;
            snap.queue = s.snapshot.queue.clone();
            update(&mut s, Msg::Data(Box::new(snap)), t0())
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = draw_benches
}
criterion_main!(benches);

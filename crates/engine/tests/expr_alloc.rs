//! Evaluating an expression against a plain attributes object must not allocate: a queue's
//! `target_workers` runs against every worker of the workspace. A counting allocator checks it; it is its
//! own test binary so the allocator affects nothing else.

use engine::expr::{Expr, WorkerScope};
use serde_json::json;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts calls on the current thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce() -> bool) -> (bool, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let result = f();
    (result, ALLOCATIONS.with(Cell::get) - before)
}

#[test]
fn expr_eval_on_attributes_does_not_allocate() {
    let attributes = json!({
        "skills": ["support", "sales"], "language": "en", "level": 4, "vip": true,
        "object": {"array": [1, 2, 3], "param": "pear"},
    });
    let expr = Expr::parse(
        "(skills HAS 'support' AND language IN ['en', 'fr']) AND (level >= 5.5 OR level < 4.5) \
         AND object.array[2] == 3 AND object.param CONTAINS 'ea' AND missing == null \
         AND language NOT IN object.array AND vip AND NOT object.param != 'pear'",
    )
    .unwrap();
    // Every condition is true, so AND evaluates all of them.
    let (result, count) = allocations_during(|| expr.eval(&attributes));
    assert!(result);
    assert_eq!(count, 0, "evaluation against a Value allocated {count} times");

    // The counter does see allocations: the worker's own fields are copied into a Value.
    let worker = WorkerScope {
        attributes: &attributes,
        sid: "WK1",
        friendly_name: "a",
        activity_sid: "WA1",
        activity_name: "Idle",
    };
    let by_sid = Expr::parse("sid == 'WK1'").unwrap();
    let (result, count) = allocations_during(|| by_sid.eval(&worker));
    assert!(result);
    assert!(count > 0);
}

//! Unit and property tests of the expression language.

use super::parser::{Node, Op, Operand};
use super::*;
use proptest::prelude::*;
use serde_json::json;
use std::cmp::Ordering;

fn eval(src: &str, scope: &Value) -> bool {
    match Expr::parse(src) {
        Ok(expr) => expr.eval(scope),
        Err(e) => panic!("{src:?} should parse: {e}"),
    }
}

fn parse_err(src: &str) -> ParseError {
    match Expr::parse(src) {
        Ok(expr) => panic!("{src:?} should not parse, got {:?}", expr.tree()),
        Err(e) => e,
    }
}

fn target_err(src: &str) -> ParseError {
    match Expr::parse_target(src) {
        Ok(expr) => panic!("{src:?} should not parse as a target, got {:?}", expr.tree()),
        Err(e) => e,
    }
}

fn worker() -> Value {
    json!({
        "skills": ["support", "sales"],
        "languages": ["english", "spanish"],
        "language": "en",
        "skill_rating": 5.5,
        "level": 3,
        "vip": true,
        "condition_a": false,
        "condition_b": true,
        "object": {"param": "pear", "array": [10, 20, 30], "nested": {"deep": "yes"}},
        "matrix": [[1, 2], [3, 4]],
        "nothing": null,
        "name": "Alice Smith",
        "ids": [1, 2.5, "x", true],
    })
}

// ---- documented examples (reference §8) ----

#[test]
fn expr_documented_examples() {
    let w = json!({
        "key": 2, "object": {"param": "pear"}, "language": "fr", "skill_rating": 5.1,
        "condition_a": false, "condition_b": true,
        "skills": ["support"], "languages": ["english"],
        "preferred_agents": ["a1"],
    });
    for src in [
        "1 == 1",
        "1==1",
        "1 = 1",
        "0 != 1",
        "\"apple\" != \"orange\"",
        "key > 1",
        "object.param != \"apple\"",
        "language IN [\"en\", \"fr\"]",
        "(condition_a == true) OR (condition_b == true)",
        "(language == \"en\" OR language == \"fr\") AND skill_rating >= 5.1",
        "(skills HAS 'support') AND (languages HAS 'english')",
        "preferred_agents != null",
    ] {
        assert!(eval(src, &w), "{src} should be true for {w}");
    }
    assert!(!eval("language IN ['en', 'es']", &w));
    assert!(!eval("skills HAS 'billing'", &w));
}

#[test]
fn expr_documented_target_examples() {
    let task = json!({"required_language": "es", "preferred_agents": ["w7"], "requested_agent": "w7"});
    let attrs = json!({"spoken_languages": ["en", "es"], "id": "w7", "agent_id": "w7"});
    let worker = WorkerScope {
        attributes: &attrs,
        sid: "WK01",
        friendly_name: "alice",
        activity_sid: "WA01",
        activity_name: "Generally Available",
    };
    let scope = TargetScope { task: &task, worker: &worker };
    for src in [
        "task.required_language IN worker.spoken_languages",
        "worker.id IN task.preferred_agents",
        "task.requested_agent==worker.agent_id",
        "worker.activity_name in ['Generally Available', 'High Value Tasks']",
        "worker.sid == 'WK01' AND worker.friendly_name == \"alice\" AND worker.activity_sid == 'WA01'",
    ] {
        let expr = Expr::parse_target(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert!(expr.eval(&scope), "{src}");
    }
    let other = json!({"spoken_languages": ["en"], "id": "w8"});
    let worker = WorkerScope { attributes: &other, ..worker };
    let scope = TargetScope { task: &task, worker: &worker };
    assert!(!Expr::parse_target("task.required_language IN worker.spoken_languages").unwrap().eval(&scope));
    assert!(!Expr::parse_target("worker.id IN task.preferred_agents").unwrap().eval(&scope));
}

// ---- literals ----

#[test]
fn expr_string_literals_and_escapes() {
    let w = json!({"q": "it's \"x\"\n\\", "s": "en"});
    assert!(eval(r#"q == 'it\'s "x"\n\\'"#, &w));
    assert!(eval(r#"q == "it's \"x\"\n\\""#, &w));
    assert!(eval("s == 'en' AND s == \"en\"", &w));
    assert!(!eval("s == 'EN'", &w), "strings are case-sensitive");
    assert!(eval("\"tab\\there\" CONTAINS \"\\t\"", &w));
}

#[test]
fn expr_number_literals() {
    let w = json!({"i": 3, "f": 3.0, "neg": -2, "negf": -2.5, "big": u64::MAX, "e": 1500.0});
    assert!(eval("i == 3 AND i == 3.0 AND f == 3 AND f = 3.0", &w), "int and float compare by value");
    assert!(eval("neg == -2 AND neg < -1 AND negf < -2 AND negf > -3", &w));
    assert!(eval("big == 18446744073709551615 AND big > 1", &w));
    assert!(eval("e == 1.5e3 AND e == 15E2 AND e > 1e-3", &w));
    assert!(eval("i > 2.5 AND i < 3.5 AND 3.14159 > 3", &w));
    assert!(!eval("i == 4", &w));
}

#[test]
fn expr_boolean_and_null_literals() {
    let w = worker();
    assert!(eval("vip == true AND vip != false AND condition_a == false", &w));
    assert!(eval("vip == TRUE AND condition_a == False", &w), "true/false are case-insensitive");
    assert!(!eval("vip == 1", &w), "booleans are not numbers");
    assert!(!eval("vip > false", &w), "booleans have no order");
    assert!(eval("nothing == null AND missing == NULL AND language != null", &w));
    assert!(!eval("nothing != null", &w));
    assert!(eval("null == null AND NOT (null != null)", &w));
}

#[test]
fn expr_array_literals() {
    let w = worker();
    assert!(eval("language IN [\"en\", 'es', 3]", &w));
    assert!(eval("level IN [\"en\", 'es', 3]", &w));
    assert!(eval("level in [1.0, 3.0]", &w));
    assert!(!eval("level IN []", &w));
    assert!(eval("level NOT IN []", &w));
    assert!(eval("vip IN [false, true]", &w));
    assert!(eval("[1, 2] HAS 2", &w));
    assert!(!eval("[1, 2] == [1, 2]", &w), "== on arrays is false");
}

// ---- references ----

#[test]
fn expr_missing_keys_are_null() {
    let w = worker();
    assert!(!eval("missing == 'x'", &w));
    assert!(eval("missing != 'x'", &w), "!= is the negation of == for NULL vs scalar");
    assert!(!eval("missing > 1 OR missing < 1 OR missing >= 1 OR missing <= 1", &w));
    assert!(!eval("missing CONTAINS 'x' OR missing HAS 'x' OR missing IN ['x']", &w));
    assert!(!eval("object.missing.deeper == 1", &w));
    assert!(eval("object.missing.deeper == null", &w));
    assert!(eval("language.deeper == null", &w), "a path through a string is NULL");
    assert!(eval("object.array[7] == null", &w), "an index past the end is NULL");
    assert!(eval("object[0] == null AND skills.key == null", &w), "index on an object, key on an array");
}

#[test]
fn expr_nested_and_index_paths() {
    let w = worker();
    assert!(eval("object.param == 'pear'", &w));
    assert!(eval("object.nested.deep == 'yes'", &w));
    assert!(eval("object.array[2] == 30 AND object.array[0] < object.array[1]", &w));
    assert!(eval("matrix[1][0] == 3", &w));
    assert!(eval("skills[0] == 'support'", &w));
    let w2 = json!({"a": {"0": "zero", "in": "kw", "x_1": 1}});
    assert!(
        eval("a.0 == 'zero' AND a.in == 'kw' AND a.x_1 == 1", &w2),
        "keys after a dot may be digits/keywords"
    );
    let unicode = json!({"langue_française": "oui"});
    assert!(eval("langue_française == 'oui'", &unicode));
}

#[test]
fn expr_references_on_both_sides() {
    let w = json!({"a": 1, "b": 1.0, "c": 2, "list": [1, 2], "s": "abc", "t": "b"});
    assert!(eval("a == b AND a != c AND a < c AND a IN list AND list HAS c AND s CONTAINS t", &w));
}

// ---- operators ----

#[test]
fn expr_equality_operators() {
    let w = worker();
    assert!(eval("language == 'en' AND language = 'en'", &w));
    assert!(eval("language != 'fr'", &w));
    assert!(!eval("language != 'en'", &w));
    assert!(!eval("level == 'three'", &w), "a string that is no number never equals a number");
    assert!(eval("level != 'three'", &w), "!= across scalar types is true");
    assert!(!eval("vip == 'true' OR vip == 1", &w), "booleans equal booleans only");
    assert!(!eval("skills == 'support'", &w), "== on an array is false");
    assert!(!eval("skills != 'support'", &w), "!= on an array is false");
    assert!(!eval("object == 'x' OR object != 'x'", &w), "objects are not scalars");
    assert!(eval("skills != null AND object != null", &w));
}

#[test]
fn expr_ordering_operators() {
    let w = worker();
    assert!(eval("level > 2 AND level >= 3 AND level < 4 AND level <= 3", &w));
    assert!(!eval("level > 3 OR level < 3", &w));
    assert!(eval("skill_rating >= 5.5 AND skill_rating < 6", &w));
    assert!(eval("language < 'fr' AND language > 'de' AND language >= 'en' AND language <= 'en'", &w));
    assert!(eval("'B' < 'a'", &w), "strings order by code point");
    assert!(!eval("language > 1 OR level > 'a'", &w), "mixed types are false");
    assert!(!eval("skills > 1 OR skills < 1", &w), "arrays are not ordered");
}

/// Twilio's TaskQueue resource page: `EvaluateWorkerAttributes={"tech_support_skill": "6"}` lists the queue
/// `tech_support_skill > 5`. A numeric string compares as a number against a number, in every scalar
/// comparison and on either side; two strings still compare as strings.
#[test]
fn expr_numeric_strings_compare_as_numbers_against_numbers() {
    let w = json!({"tech_support_skill": "6", "rating": "5.5", "big": "1e3", "padded": " 6", "code": "007",
                   "ids": ["1", "2"], "n": 6});
    assert!(eval("tech_support_skill > 5", &w), "the documented example");
    assert!(eval("tech_support_skill >= 6 AND tech_support_skill <= 6 AND tech_support_skill < 7", &w));
    assert!(eval("tech_support_skill == 6 AND tech_support_skill == 6.0 AND tech_support_skill != 5", &w));
    assert!(!eval("tech_support_skill != 6 OR tech_support_skill > 6", &w));
    assert!(eval("5 < tech_support_skill AND 6 == tech_support_skill", &w), "the number may be on the left");
    assert!(eval("n == '6' AND n > '5' AND n < '10'", &w), "a numeric string constant against a number");
    assert!(eval("rating > 5 AND rating < 6 AND big == 1000 AND code == 7", &w));
    assert!(eval("1 IN ids AND ids HAS 2 AND 3 NOT IN ids", &w), "membership uses the same equality");
    assert!(!eval("padded == 6 OR padded > 5", &w), "spaces make it no number");
    assert!(eval("padded != 6", &w), "!= stays the negation of ==");
    assert!(eval("tech_support_skill > '10'", &w), "two strings compare as strings");
    assert!(!eval("tech_support_skill == '6.0'", &w), "two strings compare exactly");
}

#[test]
fn expr_numeric_string_forms() {
    use super::lexer::numeric_string;
    for (text, number) in [
        ("6", json!(6)),
        ("-2", json!(-2)),
        ("007", json!(7)),
        ("5.1", json!(5.1)),
        ("1e3", json!(1000.0)),
        ("2E-1", json!(0.2)),
        ("18446744073709551615", json!(u64::MAX)),
        ("99999999999999999999", json!(1e20)),
    ] {
        assert_eq!(numeric_string(text).map(Value::Number), Some(number), "{text:?}");
    }
    for text in
        ["", "-", " 6", "6 ", "+6", ".5", "5.", "1e", "1e+", "0x10", "NaN", "inf", "1_000", "6a", "1e999"]
    {
        assert_eq!(numeric_string(text), None, "{text:?}");
    }
}

#[test]
fn expr_contains() {
    let w = worker();
    assert!(eval("name CONTAINS 'Smith' AND name contains 'Alice Smith' AND name CONTAINS ''", &w));
    assert!(!eval("name CONTAINS 'smith'", &w), "case-sensitive");
    assert!(!eval("skills CONTAINS 'support'", &w), "CONTAINS on an array is false");
    assert!(!eval("level CONTAINS 3 OR name CONTAINS 3", &w), "strings only");
}

#[test]
fn expr_has() {
    let w = worker();
    assert!(eval("skills HAS 'support' AND skills >- 'sales' AND skills has \"sales\"", &w));
    assert!(!eval("skills HAS 'billing'", &w));
    assert!(eval("ids HAS 1 AND ids HAS 1.0 AND ids HAS 2.5 AND ids HAS 'x' AND ids HAS true", &w));
    assert!(!eval("language HAS 'en'", &w), "HAS on a scalar is false");
    assert!(!eval("skills HAS ['support']", &w), "the right side must be a scalar");
    assert!(!eval("skills HAS null", &w));
}

#[test]
fn expr_in_and_not_in() {
    let w = worker();
    assert!(eval("language IN ['en', 'fr'] AND language <- ['en'] AND language in ['en']", &w));
    assert!(!eval("language IN ['de', 'fr']", &w));
    assert!(eval("language NOT IN ['de', 'fr'] AND language not in ['de']", &w));
    assert!(!eval("language NOT IN ['en']", &w));
    assert!(eval("'sales' IN skills AND 'billing' NOT IN skills", &w), "the array may be a reference");
    assert!(!eval("skills IN ['support'] OR skills NOT IN ['x']", &w), "left array: type mismatch");
    assert!(!eval("language IN 'en' OR language NOT IN 'de'", &w), "right scalar: type mismatch");
    assert!(!eval("missing IN ['x'] OR language IN missing", &w));
    assert!(eval("missing NOT IN ['x'] AND language NOT IN missing", &w), "NULL NOT IN / NOT IN NULL");
}

#[test]
fn expr_keywords_are_case_insensitive() {
    let w = worker();
    assert!(eval("language in ['en'] and level == 3 Or vip == FALSE", &w));
    assert!(eval("skills Has 'support' AnD name CoNtAiNs 'Al' aNd language NoT iN ['fr']", &w));
    assert!(eval("NoT (level == 4)", &w));
}

#[test]
fn expr_precedence_and_parentheses() {
    let scope = json!({"a": true, "b": false, "c": false});
    // AND binds tighter than OR: a OR (b AND c)
    assert!(eval("a == true OR b == true AND c == true", &scope));
    assert!(!eval("(a == true OR b == true) AND c == true", &scope));
    assert!(eval("b == true AND c == true OR a == true", &scope));
    assert!(!eval("b == true AND (c == true OR a == true)", &scope));
    // comparisons bind tighter than AND/OR
    let e = Expr::parse("x == 1 AND y == 2 OR z == 3").unwrap();
    assert!(matches!(e.tree(), Node::Or(c) if c.len() == 2 && matches!(c[0], Node::And(_))));
    assert!(eval("((((a == true))))", &scope));
}

#[test]
fn expr_not_prefix_extension() {
    let w = worker();
    assert!(eval("NOT level == 4", &w), "NOT binds looser than a comparison");
    assert!(!eval("NOT level == 3", &w));
    assert!(eval("NOT level == 3 OR vip == true", &w), "NOT binds tighter than OR");
    assert!(!eval("NOT (level == 3 OR vip == true)", &w));
    assert!(eval("NOT NOT vip", &w));
}

#[test]
fn expr_bare_conditions_extension() {
    let w = worker();
    assert!(eval("vip", &w));
    assert!(!eval("condition_a", &w));
    assert!(!eval("language", &w), "only JSON true is true");
    assert!(!eval("missing", &w));
    assert!(eval("true", &w));
    assert!(!eval("false", &w));
}

// ---- is_always_true and references ----

#[test]
fn expr_is_always_true() {
    for src in ["1==1", "1 = 1", "true", "TRUE", "(1 == 1)", "'a' != 'b'", "1==1 OR x == 2", "NOT false"] {
        assert!(Expr::parse(src).unwrap().is_always_true(), "{src}");
    }
    for src in ["1==2", "false", "x == 1", "1==1 AND x == 1", "x == x", "x"] {
        assert!(!Expr::parse(src).unwrap().is_always_true(), "{src}");
    }
}

#[test]
fn expr_references_lists_every_path() {
    let e = Expr::parse("task.a.b[0] IN worker.list AND (x == 1 OR 'k' IN y) AND x > 0").unwrap();
    let refs: Vec<String> = e.references().map(|p| p.to_string()).collect();
    assert_eq!(refs, ["task.a.b[0]", "worker.list", "x", "y", "x"]);
    assert_eq!(Expr::parse("1 == 1").unwrap().references().count(), 0);
}

#[test]
fn expr_path_accessors() {
    let e = Expr::parse("task.object.array[2] == 1").unwrap();
    let path = e.references().next().unwrap();
    assert_eq!(path.root(), "task");
    assert_eq!(
        path.segments(),
        [Segment::Key("object".into()), Segment::Key("array".into()), Segment::Index(2)]
    );
    assert_eq!(path.tail().map(|t| t.to_string()).as_deref(), Some("object.array[2]"));
    assert_eq!(path.to_string(), "task.object.array[2]");
    assert_eq!(path.lookup(&json!({"task": {"object": {"array": [0, 0, 7]}}})), Some(&json!(7)));
}

#[test]
fn expr_types_are_shareable() {
    fn check<T: Clone + std::fmt::Debug + Send + Sync + PartialEq>() {}
    check::<Expr>();
    check::<OrderBy>();
    check::<TaskRef>();
    check::<Path>();
    check::<ParseError>();
    fn is_error<E: std::error::Error>() {}
    is_error::<ParseError>();
}

#[test]
fn expr_order_by_and_task_ref_serde() {
    let o: OrderBy = serde_json::from_str("\"worker.level DESC\"").unwrap();
    assert_eq!(serde_json::to_string(&o).unwrap(), "\"worker.level DESC\"");
    assert!(serde_json::from_str::<OrderBy>("\"level\"").is_err());
    let r: TaskRef = serde_json::from_str("\"task.agent\"").unwrap();
    assert_eq!(r.to_string(), "task.agent");
    assert_eq!("task.agent".parse::<TaskRef>(), Ok(r));
    assert!(serde_json::from_str::<TaskRef>("\"worker.x\"").is_err());
}

#[test]
fn expr_source_display_fromstr_serde() {
    let src = "language  IN ['en']";
    let e: Expr = src.parse().unwrap();
    assert_eq!(e.source(), src);
    assert_eq!(e.to_string(), src);
    let json = serde_json::to_string(&e).unwrap();
    assert_eq!(json, "\"language  IN ['en']\"");
    let back: Expr = serde_json::from_str(&json).unwrap();
    assert_eq!(back, e);
    assert!(serde_json::from_str::<Expr>("\"a ==\"").is_err());
}

// ---- parse_target ----

#[test]
fn expr_parse_target_requires_prefixes() {
    assert!(Expr::parse_target("task.a == worker.b AND worker.c.d[1] IN ['x'] AND 1 == 1").is_ok());
    let e = target_err("task.a == 1 AND language == 'en'");
    assert_eq!(e.position, 16);
    assert_eq!(e.found, "`language`");
    assert!(e.expected.contains("`task.` or `worker.`"), "{e}");
    let e = target_err("task == 1");
    assert_eq!((e.position, e.found.as_str()), (0, "`task`"), "a bare prefix names nothing");
    let e = target_err("worker[0] == 1");
    assert_eq!(e.position, 0);
    assert_eq!(target_err("1 == 1 AND tasks.x == 1").found, "`tasks.x`");
    // parse accepts both forms
    assert!(Expr::parse("task.a == 1 AND language == 'en'").is_ok());
}

#[test]
fn expr_target_scope_unprefixed_is_null() {
    let task = json!({"a": 1, "task": {"a": 2}});
    let worker = json!({"b": 2});
    let scope = TargetScope { task: &task, worker: &worker };
    assert!(!eval("task.a == 1 AND worker.b == 2", &json!(null)));
    assert!(Expr::parse("task.a == 1 AND worker.b == 2").unwrap().eval(&scope));
    assert!(Expr::parse("a == null AND task == null AND other.a == null").unwrap().eval(&scope));
}

#[test]
fn expr_worker_scope_own_fields_win() {
    let attrs = json!({"sid": "WKfake", "activity_name": "x", "team": "blue"});
    let w = WorkerScope {
        attributes: &attrs,
        sid: "WKreal",
        friendly_name: "bob",
        activity_sid: "WAidle",
        activity_name: "Idle",
    };
    let check = |src: &str| Expr::parse(src).unwrap().eval(&w);
    assert!(check("sid == 'WKreal' AND activity_name == 'Idle' AND team == 'blue'"));
    assert!(check("friendly_name == 'bob' AND activity_sid == 'WAidle'"));
    assert!(!check("sid == 'WKfake'"));
    assert!(check("sid.x == null"));
}

// ---- skip_if ----

#[test]
fn expr_skip_if_counters() {
    let counts = WorkerCounts {
        available: 0,
        unavailable: 4,
        by_activity: vec![("WAbusy".into(), 3), ("WAbreak".into(), 1)],
    };
    let check = |src: &str| Expr::parse(src).unwrap().eval(&counts);
    assert!(check("workers.available == 0"));
    assert!(check("workers.unavailable > 3 AND workers.WAbusy == 3 AND workers.WAbreak < 2"));
    assert!(check("workers.WAnone == 0"), "an activity left out counts 0");
    assert!(check("workers.other == null AND available == null AND workers.available.x == null"));
    assert!(!check("workers.available > 0"));
}

// ---- order_by ----

#[test]
fn expr_order_by_parse() {
    let o = OrderBy::parse("worker.level ASC, worker.english DESC").unwrap();
    let clauses: Vec<(String, Direction)> =
        o.clauses().iter().map(|c| (c.path.to_string(), c.direction)).collect();
    assert_eq!(
        clauses,
        [("worker.level".to_owned(), Direction::Asc), ("worker.english".to_owned(), Direction::Desc)]
    );
    assert_eq!(o.source(), "worker.level ASC, worker.english DESC");
    let o = OrderBy::parse("worker.a.b desc,worker.c").unwrap();
    assert_eq!(o.clauses()[0].direction, Direction::Desc);
    assert_eq!(o.clauses()[1].direction, Direction::Asc, "ASC is the default");

    let e = OrderBy::parse("worker.level UP").unwrap_err();
    assert_eq!((e.position, e.found.as_str()), (13, "`UP`"));
    let e = OrderBy::parse("level ASC").unwrap_err();
    assert_eq!((e.position, e.found.as_str()), (0, "`level`"));
    let e = OrderBy::parse("worker.a ASC,").unwrap_err();
    assert_eq!((e.position, e.found.as_str()), (13, "end of expression"));
    assert!(OrderBy::parse("").is_err());
    assert!(OrderBy::parse("worker.a ASC DESC").is_err());
    assert!(OrderBy::parse("task.a").is_err());
}

#[test]
fn expr_order_by_compare() {
    let o = OrderBy::parse("worker.level ASC, worker.english DESC").unwrap();
    let a = json!({"level": 1, "english": 5});
    let b = json!({"level": 2, "english": 9});
    let c = json!({"level": 1.0, "english": 9});
    assert_eq!(o.compare(&a, &b), Ordering::Less);
    assert_eq!(o.compare(&b, &a), Ordering::Greater);
    assert_eq!(o.compare(&a, &c), Ordering::Greater, "tie on level, english DESC breaks it");
    assert_eq!(o.compare(&c, &c), Ordering::Equal);
    let none = json!({"english": 100});
    let text = json!({"level": "1", "english": 0});
    assert_eq!(o.compare(&a, &none), Ordering::Less, "missing sorts after present");
    assert_eq!(o.compare(&none, &a), Ordering::Greater);
    assert_eq!(o.compare(&a, &text), Ordering::Less, "non-numeric sorts after present");
    let desc = OrderBy::parse("worker.level DESC").unwrap();
    assert_eq!(desc.compare(&a, &none), Ordering::Less, "missing sorts last in DESC too");
    assert_eq!(desc.compare(&a, &b), Ordering::Greater);
    let mut workers = vec![none.clone(), b.clone(), a.clone(), c.clone()];
    workers.sort_by(|x, y| o.compare(x, y));
    assert_eq!(workers, [c, a, b, none]);
}

// ---- TaskRef ----

#[test]
fn expr_task_ref() {
    let r = TaskRef::parse("task.requested_agent").unwrap();
    assert_eq!(r.path().to_string(), "task.requested_agent");
    assert_eq!(r.resolve(&json!({"requested_agent": "WK123"})).as_deref(), Some("WK123"));
    assert_eq!(r.resolve(&json!({"requested_agent": 1001})).as_deref(), Some("1001"));
    assert_eq!(r.resolve(&json!({"requested_agent": null})), None);
    assert_eq!(r.resolve(&json!({})), None);
    assert_eq!(r.resolve(&json!({"requested_agent": ["WK1"]})), None);
    let nested = TaskRef::parse("  task.agents[1].sid ").unwrap();
    assert_eq!(nested.resolve(&json!({"agents": [{}, {"sid": "WK2"}]})).as_deref(), Some("WK2"));

    let e = TaskRef::parse("worker.sid").unwrap_err();
    assert_eq!((e.position, e.found.as_str()), (0, "`worker.sid`"));
    let e = TaskRef::parse("task.a == 1").unwrap_err();
    assert_eq!((e.position, e.found.as_str()), (7, "`==`"));
    assert_eq!(TaskRef::parse("").unwrap_err().found, "end of expression");
    assert!(TaskRef::parse("task").is_err());
    assert!(TaskRef::parse("'task.a'").is_err());
}

// ---- errors ----

#[test]
fn expr_error_messages_name_position_and_expectation() {
    let e = parse_err("skills HAS 'a' AND skills HAS");
    assert_eq!(e.to_string(), "at position 29: expected a value after HAS, found end of expression");
    let e = parse_err("language IN ");
    assert_eq!(e.to_string(), "at position 12: expected a value after IN, found end of expression");
    let e = parse_err("");
    assert_eq!(e.to_string(), "at position 0: expected a condition, found end of expression");
    let e = parse_err("a == 1 AND");
    assert_eq!((e.position, e.expected.as_str()), (10, "a condition after AND"));
    let e = parse_err("a == 1 OR )");
    assert_eq!((e.position, e.expected.as_str(), e.found.as_str()), (10, "a condition after OR", "`)`"));
    let e = parse_err("(a == 1");
    assert_eq!(
        e.to_string(),
        "at position 7: expected AND, OR or `)` to close the `(` at position 0, found end of expression"
    );
    let e = parse_err("a == 1)");
    assert_eq!(e.position, 6);
    assert!(e.expected.contains("no matching `(`"));
    let e = parse_err("a == 1 b == 2");
    assert_eq!((e.position, e.found.as_str()), (7, "`b`"));
    assert_eq!(e.expected, "AND, OR or end of expression");
    let e = parse_err("language 'en'");
    assert_eq!(
        e.to_string(),
        "at position 9: expected an operator (==, !=, <, <=, >, >=, CONTAINS, HAS, IN, NOT IN) after \
         `language`, found `'en'`"
    );
    let e = parse_err("a.b[1]c == 1");
    assert_eq!((e.position, e.found.as_str()), (6, "`c`"));
    assert!(e.expected.starts_with("an operator"), "{e}");
    let e = parse_err("a == == 1");
    assert_eq!((e.position, e.expected.as_str(), e.found.as_str()), (5, "a value after ==", "`==`"));
    let e = parse_err("'x' 'y'");
    assert_eq!(e.position, 4);
    assert!(e.expected.starts_with("an operator"), "{e}");
    let e = parse_err("a == 'open");
    assert_eq!(e.to_string(), "at position 10: expected a closing ' for the string that starts at position 5, found end of expression");
    let e = parse_err(r"a == 'x\q'");
    assert_eq!((e.position, e.found.as_str()), (8, "`q`"));
    let e = parse_err("a ! b");
    assert_eq!((e.position, e.expected.as_str()), (3, "`=` after `!`"));
    let e = parse_err("first-name == 'x'");
    assert_eq!(e.position, 5);
    assert!(e.expected.contains("hyphens"), "{e}");
    let e = parse_err("a == 1 & b == 2");
    assert_eq!((e.position, e.found.as_str()), (7, "`&`"));
    let e = parse_err("a.");
    assert_eq!((e.position, e.expected.as_str()), (2, "a key after `.`"));
    let e = parse_err("a[x] == 1");
    assert_eq!(e.position, 2);
    let e = parse_err("a[1 == 1");
    assert_eq!((e.position, e.expected.as_str()), (3, "`]` after the array index"));
    let e = parse_err("a IN [1, 2");
    assert_eq!(e.position, 10);
    assert!(e.expected.contains("close the array that starts at position 5"), "{e}");
    let e = parse_err("a IN [1, b]");
    assert_eq!((e.position, e.found.as_str()), (9, "`b`"));
    let e = parse_err("a IN [[1]]");
    assert_eq!(e.position, 6);
    let e = parse_err("a NOT 'x'");
    assert_eq!((e.position, e.expected.as_str()), (6, "IN after NOT"));
    let e = parse_err("1e999 == 1");
    assert_eq!(e.position, 0);
    let e = parse_err("x == 1 == 2");
    assert_eq!(e.position, 7);
}

#[test]
fn expr_error_positions_count_chars_not_bytes() {
    let e = parse_err("name == 'é' AND");
    assert_eq!(e.position, 15);
    let e = parse_err("é == ");
    assert_eq!(e.position, 5);
}

#[test]
fn expr_nesting_is_limited() {
    let deep = format!("{}a == 1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(Expr::parse(&deep).is_ok());
    let too_deep = format!("{}a == 1{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
    let e = parse_err(&too_deep);
    assert_eq!(e.position, MAX_DEPTH);
    let nots = format!("{}a", "NOT ".repeat(10_000));
    assert!(Expr::parse(&nots).is_err());
}

#[test]
fn expr_length_is_limited() {
    let fits = |len: usize| format!("a == '{}'", "x".repeat(len - "a == ''".len()));
    assert!(Expr::parse(&fits(MAX_EXPRESSION_BYTES)).is_ok());
    let e = parse_err(&fits(MAX_EXPRESSION_BYTES + 1));
    assert_eq!(e.position, MAX_EXPRESSION_BYTES);
    let message = e.to_string();
    assert!(message.contains(&format!("at most {MAX_EXPRESSION_BYTES} bytes")), "{message}");
    assert!(message.contains(&format!("one of {} bytes", MAX_EXPRESSION_BYTES + 1)), "{message}");
    // Bytes, not chars; the position is still a char offset.
    let wide = format!("a == '{}'", "é".repeat(MAX_EXPRESSION_BYTES / 2));
    assert_eq!(parse_err(&wide).position, "a == '".len() + (MAX_EXPRESSION_BYTES - "a == '".len()) / 2);
    let long = format!("worker.{}", "a".repeat(MAX_EXPRESSION_BYTES));
    assert!(OrderBy::parse(&long).unwrap_err().to_string().contains("the limit on an expression's length"));
    assert!(TaskRef::parse(&long).unwrap_err().to_string().contains("the limit on an expression's length"));
    assert!(target_err(&long).to_string().contains("the limit on an expression's length"));
}

#[test]
fn expr_path_segments_are_limited() {
    let path = |n: usize| format!("task{}", ".a".repeat(n));
    let longest = Expr::parse(&format!("{} == 1", path(MAX_PATH_SEGMENTS))).unwrap();
    assert!(!longest.eval(&json!({"task": {"a": {"a": {"a": 1}}}})));
    let mut nested = json!(1);
    for _ in 0..MAX_PATH_SEGMENTS {
        nested = json!({ "a": nested });
    }
    assert!(longest.eval(&json!({ "task": nested })));

    let e = parse_err(&format!("{} == 1", path(MAX_PATH_SEGMENTS + 1)));
    assert_eq!(e.position, "task".len() + 2 * MAX_PATH_SEGMENTS);
    assert!(e.to_string().contains(&format!("at most {MAX_PATH_SEGMENTS} keys and indexes")), "{e}");
    let e = parse_err(&format!("x{} == 1", "[0]".repeat(MAX_PATH_SEGMENTS + 1)));
    assert!(e.to_string().contains("the limit on a reference's length"), "{e}");
    assert!(OrderBy::parse(&format!("worker{}", ".a".repeat(MAX_PATH_SEGMENTS + 1))).is_err());
    assert!(TaskRef::parse(&path(MAX_PATH_SEGMENTS + 1)).is_err());

    // The case that once took gigabytes: 9,000 segments, 18 KB. Refused for its length before it is lexed.
    let e = parse_err(&format!("{} == 1", "a.".repeat(9_000).trim_end_matches('.')));
    assert!(e.to_string().contains("the limit on an expression's length"), "{e}");
    // Just under the length limit it is refused at the segment limit, having read only that far.
    let e = parse_err(&format!("{} == 1", "a.".repeat(MAX_EXPRESSION_BYTES / 2 - 10).trim_end_matches('.')));
    assert_eq!(e.position, 1 + 2 * MAX_PATH_SEGMENTS);
}

#[test]
fn expr_stored_text_is_held_to_the_nesting_limit_only() {
    // What an older version accepted and stored: past the length and path limits, parsed in linear time.
    let long_path = format!("{} == 1", "a.".repeat(200).trim_end_matches('.'));
    let mut nested = json!(1);
    for _ in 0..199 {
        nested = json!({ "a": nested });
    }
    let expr = Expr::parse_from(&long_path, Origin::Stored).unwrap();
    assert!(expr.eval(&json!({ "a": nested })));
    assert!(Expr::parse(&long_path).is_err());
    let longest = format!("{} == 1", "a.".repeat(9_000).trim_end_matches('.'));
    assert!(Expr::parse_from(&longest, Origin::Stored).is_ok());
    let deep_target = format!("task{} == worker.x", ".a".repeat(MAX_PATH_SEGMENTS + 1));
    assert!(Expr::parse_target_from(&deep_target, Origin::Stored).is_ok());
    assert!(Expr::parse_target(&deep_target).is_err());
    let long_list = format!("a IN [{}1]", "1,".repeat(MAX_EXPRESSION_BYTES));
    assert!(Expr::parse_from(&long_list, Origin::Stored).unwrap().eval(&json!({"a": 1})));
    let order = format!("worker{}.n DESC", ".a".repeat(MAX_PATH_SEGMENTS));
    assert_eq!(OrderBy::parse_from(&order, Origin::Stored).unwrap().clauses().len(), 1);
    assert!(OrderBy::parse(&order).is_err());
    let known = format!("task{}", ".a".repeat(MAX_EXPRESSION_BYTES));
    assert!(TaskRef::parse_from(&known, Origin::Stored).is_ok());
    assert!(TaskRef::parse(&known).is_err());
    // Nesting never was accepted past the limit, and it guards the stack: stored text meets it too.
    let too_deep = format!("{}a == 1{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
    let e = Expr::parse_from(&too_deep, Origin::Stored).unwrap_err();
    assert!(e.to_string().contains(&format!("at most {MAX_DEPTH} levels")), "{e}");
}

#[test]
fn expr_path_tails_share_their_steps() {
    // Built directly, past the parser's limits: the representation itself must be linear and must not
    // recurse per step when built, cloned, compared or dropped.
    let n = 100_000;
    let path = Path::new("task".to_owned(), vec![Segment::Key("a".to_owned()); n]);
    assert_eq!(path.segments().len(), n);
    assert!(path.cost() <= 4 * (n + 1), "cost {} for {n} steps", path.cost());
    let tail = path.tail().unwrap();
    assert!(tail.shares_steps_with(&path));
    assert_eq!((tail.root(), tail.segments().len()), ("a", n - 1));
    assert_eq!(std::iter::successors(Some(&path), |p| p.tail()).count(), n + 1);
    let copy = path.clone();
    assert_eq!(copy, path);
    assert_ne!(*tail, path);
    assert_eq!(*tail, Path::new("a".to_owned(), vec![Segment::Key("a".to_owned()); n - 1]));
    drop(copy);
    drop(path);

    let indexed = Path::new("x".to_owned(), vec![Segment::Index(0), Segment::Key("k".to_owned())]);
    assert!(indexed.tail().is_none(), "no tail when an index follows the root");
    let keyed = Path::new("task".to_owned(), vec![Segment::Key("k".to_owned()), Segment::Index(2)]);
    assert_eq!(keyed.tail().map(ToString::to_string), Some("k[2]".to_owned()));
    assert!(keyed.tail().unwrap().tail().is_none());
}

#[test]
fn expr_adversarial_nesting_is_refused_without_overflowing_the_stack() {
    // Each as long as the length limit allows, so the nesting limit (not the length) is what refuses it.
    let fill = |unit: &str, tail: &str| {
        let n = (MAX_EXPRESSION_BYTES - tail.len()) / unit.len();
        format!("{}{tail}", unit.repeat(n))
    };
    let nesting = format!("at most {MAX_DEPTH} levels");
    for src in [fill("(", "a"), fill("NOT ", "a"), fill("NOT (", "a"), fill("(NOT ", "a"), fill("not(", "")] {
        let e = parse_err(&src);
        assert!(e.to_string().contains(&nesting), "{}…: {e}", &src[..20]);
    }
    // Arrays hold constants only, so nesting them is a syntax error at the second `[`.
    let e = parse_err(&fill("[", "1"));
    assert_eq!(e.position, 1);

    // Long flat chains are not nesting: they parse into one node with many children, and evaluate.
    let and = fill("a == 1 AND ", "a == 1");
    let expr = Expr::parse(&and).unwrap();
    assert!(expr.eval(&json!({"a": 1})));
    let or = fill("a == 1 OR ", "b");
    assert!(Expr::parse(&or).unwrap().eval(&json!({"b": true})));
    let array = fill("1,", "1]");
    let array = format!("a IN [{}", &array["a IN [".len()..]);
    assert!(Expr::parse(&array).unwrap().eval(&json!({"a": 1})));
}

#[test]
fn expr_greedy_symbolic_operators() {
    let w = json!({"x": -5, "list": [-1]});
    assert!(!eval("x<-1", &w), "`<-` is IN, so this is `x IN 1`");
    assert!(eval("x < -1", &w));
    assert!(eval("list>-1", &json!({"list": [1]})), "`>-` is HAS");
}

#[test]
fn expr_canonical_rendering() {
    let e = Expr::parse("a = 1 and (b <- ['x', \"y\"] or not c >- 2.0) Or d not in []").unwrap();
    assert_eq!(e.canonical(), "(a == 1 AND (b IN [\"x\", \"y\"] OR NOT c HAS 2.0)) OR d NOT IN []");
}

// ---- properties ----

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_][a-z0-9_]{0,6}".prop_filter("not a keyword", |k| lexer_keyword(k).is_none()),
        Just("task".to_owned()),
        Just("worker".to_owned()),
    ]
}

fn lexer_keyword(word: &str) -> Option<()> {
    ["and", "or", "not", "in", "has", "contains", "true", "false", "null"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(word))
        .then_some(())
}

fn arb_path() -> impl Strategy<Value = Path> {
    let segment =
        prop_oneof!["[a-z0-9_]{1,5}".prop_map(Segment::Key), (0usize..40).prop_map(Segment::Index),];
    (arb_key(), proptest::collection::vec(segment, 0..4)).prop_map(|(root, segs)| Path::new(root, segs))
}

fn arb_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ]
}

fn arb_operand() -> impl Strategy<Value = Operand> {
    prop_oneof![
        arb_scalar().prop_map(Operand::Literal),
        proptest::collection::vec(arb_scalar(), 0..4).prop_map(|v| Operand::Literal(Value::Array(v))),
        arb_path().prop_map(Operand::Ref),
    ]
}

fn arb_node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        (arb_operand(), proptest::sample::select(Op::ALL.to_vec()), arb_operand())
            .prop_map(|(left, op, right)| Node::Compare { left, op, right }),
        arb_path().prop_map(|p| Node::Truthy(Operand::Ref(p))),
        any::<bool>().prop_map(|b| Node::Truthy(Operand::Literal(Value::Bool(b)))),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Node::Or),
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Node::And),
            inner.prop_map(|n| Node::Not(Box::new(n))),
        ]
    })
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = arb_scalar();
    leaf.prop_recursive(3, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(arb_key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// What a parsed tree holds: one per node, operand and array item, plus string bytes and each path's
/// [`Path::cost`]. Test-only: the resource property bounds it by the length of the source.
fn tree_cost(node: &Node) -> usize {
    fn value(v: &Value) -> usize {
        match v {
            Value::String(s) => 1 + s.len(),
            Value::Array(items) => 1 + items.iter().map(value).sum::<usize>(),
            _ => 1,
        }
    }
    fn operand(o: &Operand) -> usize {
        match o {
            Operand::Literal(v) => value(v),
            Operand::Ref(path) => path.cost(),
        }
    }
    match node {
        Node::Or(children) | Node::And(children) => 1 + children.iter().map(tree_cost).sum::<usize>(),
        Node::Not(inner) => 1 + tree_cost(inner),
        Node::Compare { left, right, .. } => 1 + operand(left) + operand(right),
        Node::Truthy(o) => 1 + operand(o),
    }
}

/// Text built to stress the parser: a fragment repeated up to past the length limit, between a prefix and
/// a suffix that may or may not close it.
fn arb_adversarial() -> impl Strategy<Value = String> {
    let fragments = vec![
        "a.",
        "a.b[0].",
        "(",
        "NOT ",
        "NOT (",
        "[",
        "1, ",
        "a == 1 AND ",
        "x OR ",
        "'é",
        "task.a.a.a IN [1] AND ",
    ];
    let unit = prop_oneof![
        proptest::sample::select(fragments).prop_map(str::to_owned),
        "[a-z.()\\[\\]'\" ,=!<>0-9]{1,8}",
    ];
    let prefix = prop_oneof![Just(""), Just("a IN ["), Just("("), Just("task.")];
    let suffix = prop_oneof![Just(""), Just("a"), Just("a == 1"), Just("1]"), Just(")"), Just("1")];
    (prefix, unit, 0..(MAX_EXPRESSION_BYTES + 64), suffix).prop_map(|(prefix, unit, n, suffix)| {
        format!("{prefix}{}{suffix}", unit.repeat(n / unit.len().max(1)))
    })
}

proptest! {
    /// Parsing never costs more than a constant per byte: it fails, or the tree is linear in the source.
    #[test]
    fn expr_parse_cost_is_linear_in_the_source(
        src in prop_oneof![
            arb_adversarial(),
            any::<String>(),
            "[a-z.\\[\\]0-9 =()]{0,200}",
            (0..MAX_PATH_SEGMENTS + 4, "[a-z]{1,3}")
                .prop_map(|(n, key)| format!("task.{} == 1", vec![key; n].join("."))),
        ]
    ) {
        for expr in [Expr::parse(&src), Expr::parse_target(&src)].into_iter().flatten() {
            prop_assert!(src.len() <= MAX_EXPRESSION_BYTES);
            let cost = tree_cost(expr.tree());
            prop_assert!(cost <= 4 * src.len() + 4, "cost {} for {} bytes", cost, src.len());
            for path in expr.references() {
                prop_assert!(path.segments().len() <= MAX_PATH_SEGMENTS);
                if let Some(tail) = path.tail() {
                    prop_assert!(tail.shares_steps_with(path));
                }
            }
        }
        if let Ok(order) = OrderBy::parse(&src) {
            let cost: usize = order.clauses().iter().map(|c| c.path.cost()).sum();
            prop_assert!(cost <= 4 * src.len() + 4, "order_by cost {} for {} bytes", cost, src.len());
        }
        if let Ok(reference) = TaskRef::parse(&src) {
            prop_assert!(reference.path().cost() <= 4 * src.len() + 4);
        }
    }
}

proptest! {
    #[test]
    fn expr_parse_never_panics_on_arbitrary_text(src in any::<String>()) {
        if let Ok(e) = Expr::parse(&src) {
            prop_assert_eq!(Expr::parse(e.source()), Ok(e.clone()));
            let again = Expr::parse(&e.canonical()).map(|c| c.tree().clone());
            prop_assert_eq!(again, Ok(e.tree().clone()));
        }
        let _ = Expr::parse_target(&src);
        let _ = OrderBy::parse(&src);
        let _ = TaskRef::parse(&src);
    }

    #[test]
    fn expr_parse_never_panics_on_expression_like_text(
        src in "[a-z()\\[\\]'\" .,=!<>\\-0-9]{0,40}|((and|OR|not|IN|has|CONTAINS|null|true|x\\.y|\\[1\\]|'s'|==|!=|<-|>-|\\(|\\)|1\\.5|-2) ?){0,12}"
    ) {
        if let Ok(e) = Expr::parse(&src) {
            let again = Expr::parse(&e.canonical()).map(|c| c.tree().clone());
            prop_assert_eq!(again, Ok(e.tree().clone()));
            let _ = e.eval(&Value::Null);
        }
    }

    #[test]
    fn expr_canonical_text_round_trips(node in arb_node()) {
        let text = node.to_string();
        let parsed = Expr::parse(&text);
        prop_assert!(parsed.is_ok(), "{} did not parse: {:?}", text, parsed);
        if let Ok(parsed) = parsed {
            prop_assert_eq!(parsed.tree(), &node);
        }
    }

    #[test]
    fn expr_eval_never_panics_and_ne_negates_eq_on_scalars(
        node in arb_node(), scope in arb_json(), a in arb_scalar(), b in arb_scalar()
    ) {
        let expr = Expr::parse(&node.to_string()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let _ = expr.eval(&scope);
        let _ = expr.eval(&TargetScope { task: &scope, worker: &scope });
        prop_assert_eq!(eval::compare(&a, Op::Ne, &b), !eval::compare(&a, Op::Eq, &b));
        let list = Value::Array(vec![b.clone()]);
        if !a.is_null() {
            prop_assert_eq!(eval::compare(&a, Op::NotIn, &list), !eval::compare(&a, Op::In, &list));
        }
    }

    /// A number written as a string compares with a number exactly as the number itself does.
    #[test]
    fn expr_a_numeric_string_compares_as_its_number(x in any::<i64>(), y in any::<i64>(), f in -1e9f64..1e9) {
        let f = Value::from(f);
        for (a, b) in [(Value::from(x), Value::from(y)), (Value::from(x), f.clone()), (f.clone(), Value::from(y))] {
            for op in [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge] {
                let text = Value::String(a.to_string());
                prop_assert_eq!(eval::compare(&text, op, &b), eval::compare(&a, op, &b), "{} {:?} {}", text, op, b);
                prop_assert_eq!(eval::compare(&b, op, &text), eval::compare(&b, op, &a), "{} {:?} {}", b, op, text);
            }
        }
    }

    #[test]
    fn expr_order_by_is_a_total_order(
        workers in proptest::collection::vec(
            proptest::collection::btree_map(
                prop_oneof![Just("a".to_owned()), Just("b".to_owned())],
                prop_oneof![any::<i32>().prop_map(Value::from), (-5.0f64..5.0).prop_map(Value::from), Just(json!("s"))],
                0..3,
            ).prop_map(|m| Value::Object(m.into_iter().collect())),
            0..12,
        )
    ) {
        let o = OrderBy::parse("worker.a DESC, worker.b").map_err(|e| TestCaseError::fail(e.to_string()))?;
        for x in &workers {
            prop_assert_eq!(o.compare(x, x), Ordering::Equal);
            for y in &workers {
                prop_assert_eq!(o.compare(x, y), o.compare(y, x).reverse());
                for z in &workers {
                    if o.compare(x, y) != Ordering::Greater && o.compare(y, z) != Ordering::Greater {
                        prop_assert_ne!(o.compare(x, z), Ordering::Greater);
                    }
                }
            }
        }
    }
}

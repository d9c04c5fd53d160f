//! Query-string parsing: the shapes NestJS accepts and class-validator's 400 wording.

use serde::Deserialize;

use super::parse_query;
use crate::api::ApiError;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Order {
    Desc,
    Asc,
}

#[derive(Debug, Deserialize, PartialEq)]
#[allow(non_snake_case)]
struct Q {
    all: Option<bool>,
    limit: Option<f64>,
    sortOrder: Option<Order>,
    ids: Option<Vec<String>>,
    #[serde(rename = "filter.fromMe")]
    from_me: Option<bool>,
}

fn messages(e: ApiError) -> Vec<String> {
    if let ApiError::Validation(m) = e {
        m
    } else {
        panic!("expected a validation error, got {e:?}")
    }
}

#[test]
fn parse_query_typed_values_parse() {
    let q: Q = parse_query("all=true&limit=5&sortOrder=asc&ids=a,b&ids[]=c&filter.fromMe=0")
        .expect("parses");
    assert_eq!(
        q,
        Q {
            all: Some(true),
            limit: Some(5.0),
            sortOrder: Some(Order::Asc),
            ids: Some(vec!["a".into(), "b".into(), "c".into()]),
            from_me: Some(false),
        }
    );
}

#[test]
fn parse_query_empty_values_are_absent_and_last_scalar_wins() {
    let q: Q = parse_query("all=&limit=1&limit=7&unknown=x").expect("parses");
    assert_eq!(q.all, None);
    assert_eq!(q.limit, Some(7.0));
    assert_eq!(q.ids, None);
}

#[test]
fn parse_query_bad_boolean_is_class_validator_400() {
    let e = parse_query::<Q>("all=maybe").expect_err("rejected");
    assert_eq!(messages(e), ["all must be a boolean value"]);
    let e = parse_query::<Q>("filter.fromMe=yes").expect_err("rejected");
    assert_eq!(messages(e), ["filter.fromMe must be a boolean value"]);
}

#[test]
fn parse_query_bad_number_is_class_validator_400() {
    for bad in ["abc", "NaN", "inf"] {
        let e = parse_query::<Q>(&format!("limit={bad}")).expect_err("rejected");
        assert_eq!(
            messages(e),
            ["limit must be a number conforming to the specified constraints"],
            "{bad}"
        );
    }
}

#[test]
fn parse_query_bad_enum_lists_the_values() {
    let e = parse_query::<Q>("sortOrder=up").expect_err("rejected");
    assert_eq!(
        messages(e),
        ["sortOrder must be one of the following values: desc, asc"]
    );
}

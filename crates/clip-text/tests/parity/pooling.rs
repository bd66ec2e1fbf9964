//! transformers' EOS rule for the pooled output.

use burn::tensor::{Int, Tensor};
use clip_text::EosRule;

use crate::common::{device, B};

fn positions(rule: EosRule, rows: [[i64; 6]; 3]) -> Vec<i64> {
    let ids = Tensor::<B, 2, Int>::from_ints(rows, &device());
    rule.positions(ids).into_data().to_vec::<i64>().unwrap()
}

#[test]
fn legacy_rule_takes_the_first_largest_id() {
    let rows = [
        [49406, 320, 49407, 0, 0, 0],
        [49406, 5, 6, 7, 8, 9],         // truncated: no EOS, BOS is the largest
        [1, 49407, 3, 49407, 49407, 2], // ties: first one
    ];
    assert_eq!(EosRule::from_eos_token_id(2), EosRule::ArgmaxId);
    assert_eq!(positions(EosRule::ArgmaxId, rows), [2, 0, 1]);
}

#[test]
fn first_match_rule() {
    let rows = [
        [49406, 320, 49407, 49407, 49407, 49407], // stock padding with EOS: the first EOS
        [49406, 5, 6, 7, 8, 9],                   // no EOS: position 0 (torch argmax of zeros)
        [49406, 9, 49408, 49407, 0, 0],           // an added token above EOS does not matter
    ];
    let rule = EosRule::from_eos_token_id(49407);
    assert_eq!(rule, EosRule::FirstMatch(49407));
    assert_eq!(positions(rule, rows), [2, 0, 3]);
}

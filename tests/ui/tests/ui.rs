//! trybuild UI tests: every accepted argument compiles (`pass/`), every
//! misuse fails with a reviewed message on the right token (`fail/`).
//! Regenerate `.stderr` files with `TRYBUILD=overwrite` and review the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("pass/*.rs");
    cases.compile_fail("fail/*.rs");
}

//! `#[profile]` on every shape of function: the signature, docs and other
//! attributes stay as written, and early `return` / `?` still compile.

use std::fmt::Display;

use perf_runtime::prelude::*;

/// Doc comments survive.
#[profile]
#[inline]
#[must_use]
pub fn documented(a: u32, b: u32) -> u32 {
    a + b
}

#[profile]
fn early_return(x: i32) -> Result<i32, String> {
    if x < 0 {
        return Err(format!("{x} is negative"));
    }
    let parsed: i32 = "12".parse().map_err(|e: std::num::ParseIntError| e.to_string())?;
    Ok(x + parsed)
}

#[profile]
fn question_mark_with_conversion(text: &str) -> Result<u64, Box<dyn std::error::Error>> {
    Ok(text.parse::<u64>()?)
}

#[profile]
async fn async_question_mark(text: String) -> Result<u64, std::num::ParseIntError> {
    let n = text.parse::<u64>()?;
    Ok(n)
}

#[profile]
fn generic<T: Display + Clone>(value: T) -> String
where
    T: Send,
{
    value.to_string()
}

#[profile]
fn impl_trait_argument(items: impl IntoIterator<Item = u8>) -> usize {
    items.into_iter().count()
}

#[profile]
fn impl_trait_return(n: u8) -> impl Iterator<Item = u8> {
    0..n
}

#[profile]
fn tuple_pattern((a, b): (u8, u8)) -> u8 {
    a.max(b)
}

#[profile]
unsafe fn unsafe_fn(pointer: *const u8) -> u8 {
    unsafe { *pointer }
}

struct Account {
    balance: i64,
    history: Vec<i64>,
}

impl Account {
    #[profile]
    fn balance(&self) -> i64 {
        self.balance
    }

    #[profile]
    fn deposit(&mut self, amount: i64) -> &mut Vec<i64> {
        self.balance += amount;
        self.history.push(amount);
        &mut self.history
    }

    #[profile]
    fn first(&self) -> Option<&i64> {
        self.history.first()
    }

    #[profile]
    fn into_history(self) -> Vec<i64> {
        self.history
    }

    #[profile]
    async fn refresh(&mut self) -> i64 {
        self.balance += 1;
        self.balance
    }

    #[profile]
    fn new() -> Self {
        Account { balance: 0, history: Vec::new() }
    }
}

trait Store {
    fn get(&self, key: &str) -> Option<String>;
    fn put(&mut self, key: String, value: String);
    async fn load(&self) -> usize;
}

impl Store for Account {
    #[profile]
    fn get(&self, key: &str) -> Option<String> {
        self.history.first().map(|v| format!("{key}={v}"))
    }

    #[profile(name = "store.put")]
    fn put(&mut self, _key: String, value: String) {
        self.history.push(value.len() as i64);
    }

    #[profile]
    async fn load(&self) -> usize {
        self.history.len()
    }
}

#[tokio::main]
async fn main() {
    let _ = documented(1, 2);
    let _ = early_return(1);
    let _ = question_mark_with_conversion("3");
    let _ = async_question_mark("4".into()).await;
    let _ = generic("x");
    let _ = impl_trait_argument(vec![1, 2]);
    let _ = impl_trait_return(3).count();
    let _ = tuple_pattern((1, 2));
    let byte = 5u8;
    let _ = unsafe { unsafe_fn(&byte) };
    let mut account = Account::new();
    account.deposit(5).push(1);
    let _ = account.balance();
    let _ = account.first();
    let _ = account.refresh().await;
    let _ = account.get("k");
    account.put("k".into(), "v".into());
    let _ = account.load().await;
    let _ = account.into_history();
}

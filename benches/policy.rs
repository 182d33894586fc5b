//! `cargo bench --bench policy [-- PEOPLE RULES RUNS]`: the policy benchmark at the issue's
//! target size (100,000 people x 300 rules, 5 runs) until `accessdesk bench policy` is wired.

fn main() {
    // cargo passes `--bench`; the remaining numeric arguments are the sizes.
    let nums: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let people = nums.first().copied().unwrap_or(100_000);
    let rules = nums.get(1).copied().unwrap_or(300);
    let runs = nums.get(2).copied().unwrap_or(5);
    let report = accessdesk::bench::policy::run(people, rules, runs);
    print!("{}", report.to_text());
    match serde_json::to_string(&report) {
        Ok(json) => println!("{json}"),
        Err(e) => eprintln!("encoding report: {e}"),
    }
}

//! Reconciliation suggestions: which open item a statement line most likely settles.
//! The scoring table is in the [module docs](super#reconciliation-scoring).

use std::cmp::Reverse;
use std::collections::BTreeSet;

use time::Date;

use super::StatementLine;
use crate::Money;

/// Something a statement line may settle: an open invoice, or a bank journal line not yet
/// reconciled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The caller's id for it (an invoice id, a journal line id); ties rank by it.
    pub id: u64,
    /// Its date (the invoice date, the journal entry date).
    pub date: Date,
    /// The amount expected on the statement, oriented as the statement is: positive for
    /// money in (a customer's invoice), negative for money out (a supplier's).
    pub amount: Money,
    /// Its reference, such as an invoice number `INV-000042`; may be empty.
    pub reference: String,
    /// The customer's or supplier's name; may be empty.
    pub party: String,
}

/// A candidate for one statement line, with its score and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// The [`Candidate::id`].
    pub candidate: u64,
    /// 0 to 100; see the scoring table.
    pub score: u32,
    /// What scored, for the bookkeeper: `amount 1190.00 EUR matches exactly`.
    pub reasons: Vec<String>,
}

/// The least score [`suggest`] offers: one signal besides the date.
pub const SUGGEST_THRESHOLD: u32 = 15;

/// The least score [`match_all`] pairs on: the exact amount and one more strong signal
/// (the reference, the invoice number or the full party name), or the reference with a
/// close amount and the party.
pub const MATCH_THRESHOLD: u32 = 65;

const AMOUNT_EXACT: u32 = 50;
const AMOUNT_CLOSE: u32 = 15;
/// Percent an amount may differ by and still be close.
const CLOSE_PERCENT: i128 = 3;
const REFERENCE: u32 = 30;
const REFERENCE_NUMBER: u32 = 15;
const PARTY_FULL: u32 = 15;
const PARTY_PARTIAL: u32 = 8;

/// Points for being `days` apart.
fn date_points(days: u64) -> u32 {
    match days {
        0 => 5,
        1..=3 => 4,
        4..=7 => 3,
        8..=14 => 2,
        15..=30 => 1,
        _ => 0,
    }
}

/// Legal forms and filler words left out when comparing names.
const NAME_STOPWORDS: &[&str] = &[
    "ab",
    "ag",
    "and",
    "bv",
    "co",
    "company",
    "corp",
    "corporation",
    "das",
    "der",
    "die",
    "ek",
    "et",
    "ev",
    "gbr",
    "gmbh",
    "inc",
    "kg",
    "limited",
    "llc",
    "llp",
    "ltd",
    "mbh",
    "nv",
    "of",
    "ohg",
    "plc",
    "sa",
    "sarl",
    "sas",
    "spa",
    "srl",
    "the",
    "ug",
    "und",
];

/// Ranks `candidates` for `line`, best first (ties by smaller id), keeping those scoring
/// at least [`SUGGEST_THRESHOLD`], at most `max` of them.
pub fn suggest(line: &StatementLine, candidates: &[Candidate], max: usize) -> Vec<Suggestion> {
    let prepared_line = PreparedLine::new(line);
    let mut suggestions: Vec<Suggestion> = candidates
        .iter()
        .map(|candidate| score(&prepared_line, &PreparedCandidate::new(candidate)))
        .filter(|suggestion| suggestion.score >= SUGGEST_THRESHOLD)
        .collect();
    suggestions.sort_by_key(|s| (Reverse(s.score), s.candidate));
    suggestions.truncate(max);
    suggestions
}

/// Pairs statement lines with candidates one to one: every pair scoring at least
/// [`MATCH_THRESHOLD`] is ranked (score, then line index, then candidate id) and taken
/// greedily when neither side is taken yet. Returns `(line index, candidate id, score)`
/// in line order; lines without a pair are left out.
pub fn match_all(lines: &[StatementLine], candidates: &[Candidate]) -> Vec<(usize, u64, u32)> {
    let prepared: Vec<PreparedCandidate<'_>> =
        candidates.iter().map(PreparedCandidate::new).collect();
    let mut pairs = Vec::new();
    for (line_index, line) in lines.iter().enumerate() {
        let prepared_line = PreparedLine::new(line);
        for (candidate_index, candidate) in prepared.iter().enumerate() {
            let suggestion = score(&prepared_line, candidate);
            if suggestion.score >= MATCH_THRESHOLD {
                pairs.push((suggestion.score, line_index, candidate.id, candidate_index));
            }
        }
    }
    pairs.sort_by_key(|&(score, line, id, index)| (Reverse(score), line, id, index));
    let mut line_taken = vec![false; lines.len()];
    let mut candidate_taken = vec![false; candidates.len()];
    let mut matched = Vec::new();
    for (score, line, id, index) in pairs {
        if !line_taken[line] && !candidate_taken[index] {
            line_taken[line] = true;
            candidate_taken[index] = true;
            matched.push((line, id, score));
        }
    }
    matched.sort_unstable();
    matched
}

/// A statement line, tokenised once.
struct PreparedLine<'a> {
    line: &'a StatementLine,
    /// The reference and description, for finding references in.
    text: Tokens,
    /// Folded name words of the counterparty and the description.
    words: BTreeSet<String>,
}

impl<'a> PreparedLine<'a> {
    fn new(line: &'a StatementLine) -> PreparedLine<'a> {
        let text = Tokens::new(&format!("{} {}", line.reference, line.description));
        let words = name_words(&format!("{} {}", line.counterparty, line.description));
        PreparedLine { line, text, words }
    }
}

/// A candidate, normalised once.
struct PreparedCandidate<'a> {
    id: u64,
    candidate: &'a Candidate,
    /// The reference's letters and digits, lowercase: `inv000042`.
    reference: String,
    /// The reference's last number without leading zeros (`42`), when the reference also
    /// has letters and the number has at least two digits.
    number: Option<String>,
    /// Folded name words of the party.
    words: BTreeSet<String>,
}

impl<'a> PreparedCandidate<'a> {
    fn new(candidate: &'a Candidate) -> PreparedCandidate<'a> {
        let reference: String = candidate
            .reference
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        let last_number = candidate
            .reference
            .split(|c: char| !c.is_ascii_digit())
            .rfind(|run| !run.is_empty())
            .map(|run| run.trim_start_matches('0').to_owned());
        let number = last_number
            .filter(|n| n.len() >= 2 && *n != reference)
            .filter(|_| reference.chars().any(|c| !c.is_ascii_digit()));
        PreparedCandidate {
            id: candidate.id,
            candidate,
            reference,
            number,
            words: name_words(&candidate.party),
        }
    }
}

fn score(line: &PreparedLine<'_>, candidate: &PreparedCandidate<'_>) -> Suggestion {
    let (statement, wanted) = (line.line, candidate.candidate);
    let mut score = 0;
    let mut reasons = Vec::new();

    let (got, expected) = (statement.amount, wanted.amount);
    if got == expected {
        score += AMOUNT_EXACT;
        reasons.push(format!("amount {got} matches exactly"));
    } else if got.currency() == expected.currency()
        && got.minor().signum() == expected.minor().signum()
        && expected.minor() != 0
        && (i128::from(got.minor()) - i128::from(expected.minor())).abs() * 100
            <= CLOSE_PERCENT * i128::from(expected.minor()).abs()
    {
        score += AMOUNT_CLOSE;
        reasons.push(format!(
            "amount {got} is within {CLOSE_PERCENT}% of {expected}"
        ));
    }

    if !candidate.reference.is_empty() && line.text.contains_run(&candidate.reference) {
        score += REFERENCE;
        reasons.push(format!("reference {} found", wanted.reference.trim()));
    } else if let Some(number) = &candidate.number
        && line.text.numbers.contains(number)
    {
        score += REFERENCE_NUMBER;
        reasons.push(format!(
            "number {number} of reference {} found",
            wanted.reference.trim()
        ));
    }

    if !candidate.words.is_empty() {
        let found = candidate.words.intersection(&line.words).count();
        if found == candidate.words.len() {
            score += PARTY_FULL;
            reasons.push(format!("name {} matches", wanted.party.trim()));
        } else if found * 2 >= candidate.words.len() {
            score += PARTY_PARTIAL;
            reasons.push(format!("name {} partly matches", wanted.party.trim()));
        }
    }

    let days = (statement.booking_date - wanted.date)
        .whole_days()
        .unsigned_abs();
    let points = date_points(days);
    if points > 0 {
        score += points;
        reasons.push(match days {
            0 => "same date".to_owned(),
            1 => "1 day apart".to_owned(),
            n => format!("{n} days apart"),
        });
    }

    Suggestion {
        candidate: candidate.id,
        score: score.min(100),
        reasons,
    }
}

/// Text cut into tokens: runs of letters and digits (lowercase), where a `.` or `,`
/// between two digits stays inside the token (`42,00` is one token, not `42`).
struct Tokens {
    /// The tokens, concatenated.
    compact: String,
    /// Byte offsets in `compact` where a token starts.
    starts: BTreeSet<usize>,
    /// Byte offsets in `compact` where a token ends.
    ends: BTreeSet<usize>,
    /// Tokens of digits only, without leading zeros.
    numbers: BTreeSet<String>,
}

impl Tokens {
    fn new(text: &str) -> Tokens {
        let chars: Vec<char> = text.chars().collect();
        let mut tokens: Vec<String> = Vec::new();
        let mut current = String::new();
        for (i, &c) in chars.iter().enumerate() {
            let inner_separator = matches!(c, '.' | ',')
                && i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(char::is_ascii_digit);
            if c.is_alphanumeric() || inner_separator {
                current.extend(c.to_lowercase());
            } else if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
        }
        if !current.is_empty() {
            tokens.push(current);
        }
        let mut compact = String::new();
        let (mut starts, mut ends, mut numbers) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for token in &tokens {
            starts.insert(compact.len());
            compact.push_str(token);
            ends.insert(compact.len());
            if token.bytes().all(|b| b.is_ascii_digit()) {
                numbers.insert(token.trim_start_matches('0').to_owned());
            }
        }
        Tokens {
            compact,
            starts,
            ends,
            numbers,
        }
    }

    /// Whether `needle` (letters and digits, lowercase) is one or more whole consecutive
    /// tokens: `inv000042` is in "INV 000042" and "inv-000042", not in "INV-0000420".
    fn contains_run(&self, needle: &str) -> bool {
        self.compact.match_indices(needle).any(|(start, _)| {
            self.starts.contains(&start) && self.ends.contains(&(start + needle.len()))
        })
    }
}

/// The words of a name, lowercase with umlauts and ß spelled out, without legal forms and
/// one-letter words: "Müller & Söhne GmbH" → {mueller, soehne}.
fn name_words(name: &str) -> BTreeSet<String> {
    let mut folded = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        match c {
            'ä' => folded.push_str("ae"),
            'ö' => folded.push_str("oe"),
            'ü' => folded.push_str("ue"),
            'ß' => folded.push_str("ss"),
            c if c.is_alphanumeric() => folded.push(c),
            _ => folded.push(' '),
        }
    }
    folded
        .split_whitespace()
        .filter(|word| word.chars().count() >= 2 && !NAME_STOPWORDS.contains(word))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use time::macros::date;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::EUR)
    }

    fn line(amount: i64, counterparty: &str, reference: &str, description: &str) -> StatementLine {
        StatementLine {
            line: 1,
            booking_date: date!(2024 - 04 - 10),
            value_date: None,
            amount: eur(amount),
            counterparty: counterparty.to_owned(),
            reference: reference.to_owned(),
            description: description.to_owned(),
            bank_reference: String::new(),
        }
    }

    fn candidate(id: u64, date: Date, amount: i64, reference: &str, party: &str) -> Candidate {
        Candidate {
            id,
            date,
            amount: eur(amount),
            reference: reference.to_owned(),
            party: party.to_owned(),
        }
    }

    fn scores(suggestions: &[Suggestion]) -> Vec<(u64, u32)> {
        suggestions.iter().map(|s| (s.candidate, s.score)).collect()
    }

    #[test]
    fn exact_amount_and_reference_beat_amount_only() {
        let paid = line(
            119_000,
            "Kunde & Söhne GmbH",
            "",
            "Rechnung INV-000042 vom 15.03.",
        );
        let candidates = [
            // The same amount, another customer, invoiced the same day as the payment.
            candidate(1, date!(2024 - 04 - 10), 119_000, "INV-000043", "Other Ltd"),
            // The invoice paid: exact amount 50 + reference 30 + name 15 + 26 days 1 = 96.
            candidate(
                2,
                date!(2024 - 03 - 15),
                119_000,
                "INV-000042",
                "Kunde und Soehne GmbH",
            ),
            // Reference only: 30 + name 15 + 1 = 46.
            candidate(
                3,
                date!(2024 - 03 - 15),
                50_000,
                "inv 000042",
                "Kunde & Söhne",
            ),
            // Nothing but the date: 5 points, below the threshold.
            candidate(4, date!(2024 - 04 - 10), 7_000, "X-1", ""),
        ];
        let suggestions = suggest(&paid, &candidates, 10);
        assert_eq!(scores(&suggestions), [(2, 96), (1, 55), (3, 46)]);
        assert_eq!(
            suggestions[0].reasons,
            [
                "amount 1190.00 EUR matches exactly",
                "reference INV-000042 found",
                "name Kunde und Soehne GmbH matches",
                "26 days apart",
            ]
        );
        assert_eq!(
            suggestions[1].reasons,
            ["amount 1190.00 EUR matches exactly", "same date"]
        );
        assert_eq!(scores(&suggest(&paid, &candidates, 1)), [(2, 96)]);
        assert!(suggest(&paid, &candidates, 0).is_empty());
    }

    #[test]
    fn references_match_whole_tokens_only() {
        let text = Tokens::new("Zahlung INV 000042, Betrag 42,00 EUR; RE4711 / 2024.17");
        assert!(text.contains_run("inv000042"));
        assert!(text.contains_run("000042"));
        assert!(text.contains_run("re4711"));
        assert!(!text.contains_run("inv00004"));
        assert!(!text.contains_run("nv000042"));
        assert!(!text.contains_run("42"), "42,00 is one token");
        assert!(!text.contains_run("4711"), "RE4711 is one token");
        assert_eq!(
            text.numbers.iter().map(String::as_str).collect::<Vec<_>>(),
            ["42"]
        );

        let when = date!(2024 - 01 - 01);
        let number_only = candidate(1, when, 1, "INV-000042", "");
        let cases = [
            ("Rechnung 42", true),
            ("Rechnung Nr. 0042", true),
            ("Rechnung 420", false),
            ("Rechnung 42,00", false),
            ("RE42", false),
        ];
        for (description, found) in cases {
            let statement = line(999_999, "", "", description);
            let suggestion = score(
                &PreparedLine::new(&statement),
                &PreparedCandidate::new(&number_only),
            );
            assert_eq!(suggestion.score == REFERENCE_NUMBER, found, "{description}");
        }
        // One digit is too little to go on.
        let short = candidate(2, when, 1, "INV-7", "");
        assert_eq!(PreparedCandidate::new(&short).number, None);
        let numeric = candidate(3, when, 1, "000042", "");
        assert_eq!(
            PreparedCandidate::new(&numeric).number,
            None,
            "an all-digit reference matches as a whole"
        );
    }

    #[test]
    fn close_amounts_names_and_dates() {
        let when = date!(2024 - 04 - 10);
        let statement = line(-97_000, "LIEFERANT EINS AG", "", "");
        let supplier = |id, amount, party: &str, date| candidate(id, date, amount, "", party);
        let cases = [
            // 970.00 paid for 1000.00: 3% off, close (15); name (15); same day (5).
            (supplier(1, -100_000, "Lieferant Eins", when), 35),
            // 970.00 for 950.00: 20.00 is within 3% (28.50), close (15); 3 days: 4.
            (supplier(2, -95_000, "", date!(2024 - 04 - 07)), 15 + 4),
            // 940.00: 30 > 28.20, not close; half the name: 8; 14 days: 2.
            (
                supplier(3, -94_000, "Lieferant Zwei", date!(2024 - 03 - 27)),
                8 + 2,
            ),
            // Money in, not out: the amount does not count.
            (supplier(4, 97_000, "", date!(2024 - 02 - 01)), 0),
            // Another currency.
            (
                Candidate {
                    amount: Money::new(-97_000, Currency::USD),
                    ..supplier(5, 0, "", date!(2024 - 05 - 10))
                },
                1,
            ),
        ];
        for (candidate, expected) in cases {
            let got = score(
                &PreparedLine::new(&statement),
                &PreparedCandidate::new(&candidate),
            );
            assert_eq!(got.score, expected, "{candidate:?}: {:?}", got.reasons);
        }
        assert_eq!(
            name_words("Müller & Söhne GmbH & Co. KG"),
            BTreeSet::from(["mueller".to_owned(), "soehne".to_owned()])
        );
        let days: Vec<u32> = [0, 1, 3, 4, 7, 8, 14, 15, 30, 31, 400]
            .map(date_points)
            .to_vec();
        assert_eq!(days, [5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0]);
    }

    #[test]
    fn ties_rank_by_id_whatever_the_order() {
        let statement = line(10_000, "", "", "");
        let when = date!(2024 - 04 - 10);
        let mut candidates: Vec<Candidate> = [9, 3, 7, 1]
            .map(|id| candidate(id, when, 10_000, "", ""))
            .to_vec();
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..20 {
            let i = rng.random_range(0..candidates.len());
            let j = rng.random_range(0..candidates.len());
            candidates.swap(i, j);
            assert_eq!(
                scores(&suggest(&statement, &candidates, 3)),
                [(1, 55), (3, 55), (7, 55)]
            );
        }
    }

    #[test]
    fn match_all_pairs_one_to_one() {
        let when = date!(2024 - 04 - 10);
        let lines = [
            line(10_000, "Acme", "", "INV-1001"),
            line(10_000, "Acme", "", "INV-1002"),
            line(10_000, "Acme", "", "thanks"),
            line(5_000, "Nobody", "", ""),
        ];
        let candidates = [
            candidate(11, when, 10_000, "INV-1002", "Acme Inc"),
            candidate(10, when, 10_000, "INV-1001", "Acme Inc"),
            candidate(12, when, 10_000, "INV-1003", "Acme Inc"),
            candidate(13, when, 10_000, "INV-1004", "Acme Inc"),
        ];
        // Lines 0 and 1 take their own invoices (100); line 2 scores 70 with both 12 and
        // 13 and takes the smaller id; line 3 matches nothing.
        assert_eq!(
            match_all(&lines, &candidates),
            [(0, 10, 100), (1, 11, 100), (2, 12, 70)]
        );
        // The better pair wins even when it comes later: candidate 20 is worth more to
        // line 1 (the reference) than to line 0, so line 0 is left without it.
        let lines = [
            line(10_000, "Acme", "", ""),
            line(10_000, "Acme", "", "INV-2000"),
        ];
        let candidates = [candidate(20, when, 10_000, "INV-2000", "Acme")];
        assert_eq!(match_all(&lines, &candidates), [(1, 20, 100)]);
        assert!(match_all(&[], &candidates).is_empty());
    }

    #[test]
    fn match_all_never_reuses_a_side() {
        let mut rng = StdRng::seed_from_u64(42);
        let when = date!(2024 - 04 - 10);
        for _ in 0..50 {
            let lines: Vec<StatementLine> = (0..rng.random_range(0..8))
                .map(|_| {
                    let n = rng.random_range(1..4);
                    line(n * 1_000, "Acme", "", &format!("INV-{n:04}"))
                })
                .collect();
            let candidates: Vec<Candidate> = (0..rng.random_range(0..8))
                .map(|id| {
                    let n = rng.random_range(1..4);
                    candidate(id, when, n * 1_000, &format!("INV-{n:04}"), "Acme")
                })
                .collect();
            let matched = match_all(&lines, &candidates);
            let mut seen_lines = BTreeSet::new();
            let mut seen_candidates = BTreeSet::new();
            for &(line, id, score) in &matched {
                assert!(seen_lines.insert(line) && seen_candidates.insert(id));
                assert!(score >= MATCH_THRESHOLD);
            }
            // Greedy on equal scores: as many pairs as the smaller side of each amount.
            let expected: usize = (1..4)
                .map(|n| {
                    let l = lines
                        .iter()
                        .filter(|l| l.amount.minor() == n * 1_000)
                        .count();
                    let c = candidates
                        .iter()
                        .filter(|c| c.amount.minor() == n * 1_000)
                        .count();
                    l.min(c)
                })
                .sum();
            assert_eq!(matched.len(), expected);
        }
    }
}

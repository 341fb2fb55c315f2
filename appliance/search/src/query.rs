//! The reader's words: split, bounded, turned into one tantivy query with the
//! reader's permissions in it, and marked in the text of the hits.

use std::ops::Bound;

use nexus_kernel::{Action, EntityDef, Principal};
use tantivy::Term;
use tantivy::query::{
    BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, RangeQuery, TermQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::tokenizer::TokenStream as _;

use crate::schema::{self, Fields};
use crate::{SearchError, SearchRequest};

/// The longest search taken, in characters.
pub const MAX_QUERY_CHARS: usize = 500;
/// The most distinct words a search may have.
pub const MAX_QUERY_WORDS: usize = 32;

/// A piece of a title or snippet; `hit` pieces matched the reader's words.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fragment {
    pub text: String,
    pub hit: bool,
}

pub(crate) fn plain(fragments: &[Fragment]) -> String {
    fragments.iter().map(|f| f.text.as_str()).collect()
}

/// The reader's words, analyzed as the index was.
#[derive(Debug)]
pub(crate) struct Words {
    pub terms: Vec<String>,
    /// Whether the last word may be unfinished (no space after it): it also matches
    /// as a prefix.
    pub last_is_prefix: bool,
}

/// Words that say little on their own in the languages a Swiss firm writes (English,
/// German, French; as the analyzer folds them): a question is matched without them.
const STOP_WORDS: &[&str] = &[
    // English
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how", "i",
    "if", "in", "is", "it", "my", "of", "on", "or", "our", "so", "that", "the", "there", "this",
    "to", "was", "we", "what", "when", "where", "which", "who", "why", "will", "with", "you",
    // German
    "aber", "auf", "aus", "bei", "das", "dem", "den", "der", "des", "die", "ein", "eine", "einen",
    "einer", "es", "fur", "ich", "im", "ist", "mit", "nach", "oder", "sich", "sie", "sind", "uber",
    "und", "von", "was", "wie", "wir", "zu", "zum", "zur", // French
    "au", "aux", "ce", "ces", "comment", "dans", "de", "du", "elle", "en", "est", "et", "il", "je",
    "la", "le", "les", "leur", "nous", "ou", "par", "pas", "pour", "qu", "que", "qui", "quoi",
    "se", "sont", "sur", "un", "une", "vous",
];

impl Words {
    /// The words a question is matched by: without [`STOP_WORDS`], unless it has
    /// nothing else.
    pub(crate) fn content(&self) -> Words {
        let terms: Vec<String> = self
            .terms
            .iter()
            .filter(|t| !STOP_WORDS.contains(&t.as_str()))
            .cloned()
            .collect();
        if terms.is_empty() {
            return Words {
                terms: self.terms.clone(),
                last_is_prefix: self.last_is_prefix,
            };
        }
        let last_is_prefix = self.last_is_prefix && terms.last() == self.terms.last();
        Words {
            terms,
            last_is_prefix,
        }
    }
}

pub(crate) fn words(text: &str) -> Result<Words, SearchError> {
    let n = text.chars().count();
    if n > MAX_QUERY_CHARS {
        return Err(SearchError::Query(format!(
            "a search can be at most {MAX_QUERY_CHARS} characters long (this one has {n})"
        )));
    }
    let mut terms: Vec<String> = Vec::new();
    let mut analyzer = schema::analyzer();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        let t = &stream.token().text;
        if !terms.contains(t) {
            terms.push(t.clone());
        }
    }
    if terms.len() > MAX_QUERY_WORDS {
        return Err(SearchError::Query(format!(
            "a search can have at most {MAX_QUERY_WORDS} different words (this one has {})",
            terms.len()
        )));
    }
    let last_is_prefix = text.chars().last().is_some_and(char::is_alphanumeric);
    Ok(Words {
        terms,
        last_is_prefix,
    })
}

/// How many typos a word of `n` characters may have and still match.
fn typos(n: usize) -> u8 {
    match n {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

/// From how many distinct words a search is read as a question rather than as
/// keywords: it matches records with **any** of its words, ranked by BM25 (those with
/// more of the rarer words first), where a shorter one matches only records with
/// every word.
pub const ANY_WORD_FROM: usize = 4;

/// The words' clauses (each word exactly, as a prefix if it is the last being typed,
/// or within its typos, as a whole word); the reader's scope is applied to what they
/// match as it is collected ([`reader`], [`schema::Scoped`]).
///
/// Keywords (`every_word`) must each be in the title (twice the weight) or the search
/// fields. A question's words need only be there one at a time, and are matched
/// against the title and the search fields as one text, so that BM25 ranks it as
/// defined (a title that many records share would otherwise outweigh rarer words).
pub(crate) fn matching(
    fields: &Fields,
    words: &Words,
    every_word: bool,
    searcher: &tantivy::Searcher,
) -> Vec<(Occur, Box<dyn Query>)> {
    let last = words.terms.len().saturating_sub(1);
    let clauses: Vec<(Occur, Box<dyn Query>)> = words
        .terms
        .iter()
        .enumerate()
        .map(|(i, word)| {
            let occur = if every_word {
                Occur::Must
            } else {
                Occur::Should
            };
            // A question's words that the index holds are taken as written: a typo's
            // or a prefix's matches score flat, not by rarity, and a common word's
            // near neighbours would drown the rare words' ranking.
            let known = !every_word
                && searcher
                    .doc_freq(&Term::from_field_text(fields.all, word))
                    .is_ok_and(|n| n > 0);
            let clause: Box<dyn Query> = Box::new(word_query(
                fields,
                word,
                !every_word,
                !known && i == last && words.last_is_prefix,
                !known,
            ));
            (occur, clause)
        })
        .collect();
    if every_word {
        clauses
    } else {
        vec![(Occur::Must, Box::new(BooleanQuery::new(clauses)))]
    }
}

/// One word in the title (twice the weight) or the body — or, when `whole`, in the two
/// as one text — exactly, as a prefix when `prefix`, or within its typos when
/// `with_typos`.
fn word_query(
    fields: &Fields,
    word: &str,
    whole: bool,
    prefix: bool,
    with_typos: bool,
) -> BooleanQuery {
    let n = word.chars().count();
    let mut any: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let weighted: &[(tantivy::schema::Field, f32)] = if whole {
        &[(fields.all, 1.0)]
    } else {
        &[(fields.title, 2.0), (fields.body, 1.0)]
    };
    for &(field, boost) in weighted {
        let term = Term::from_field_text(field, word);
        any.push((
            Occur::Should,
            Box::new(BoostQuery::new(
                Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)),
                boost,
            )),
        ));
        if prefix && n >= 2 {
            any.push((
                Occur::Should,
                Box::new(BoostQuery::new(
                    Box::new(FuzzyTermQuery::new_prefix(term.clone(), 0, true)),
                    0.8 * boost,
                )),
            ));
        }
        // Typos count against whole words only: a prefix with a typo matches too
        // much ("zurch" would find "purchase").
        let d = typos(n);
        if with_typos && d > 0 {
            any.push((
                Occur::Should,
                Box::new(BoostQuery::new(
                    Box::new(FuzzyTermQuery::new(term, d, true)),
                    0.3 * boost,
                )),
            ));
        }
    }
    BooleanQuery::new(any)
}

/// What the reader may see, as clauses that every query of theirs carries: their
/// company, **and** one of the entities they may read — under a record rule, only
/// their own records of it — **and** the request's date range.
/// The reader's scope of [`scope`] without the date range, as the collector's test
/// ([`schema::Scoped`]) applies it.
pub(crate) fn reader(who: &Principal, readable: &[&'static EntityDef]) -> schema::Reader {
    schema::Reader {
        company: who.company,
        entities: readable
            .iter()
            .map(|def| (u64::from(def.code), who.own_only(def, Action::Read)))
            .collect(),
    }
}

/// The request's date range, as a clause (none without one).
pub(crate) fn dated(fields: &Fields, request: &SearchRequest) -> Option<(Occur, Box<dyn Query>)> {
    if request.from.is_none() && request.to.is_none() {
        return None;
    }
    let bound = |d: Option<time::Date>| {
        d.map_or(Bound::Unbounded, |d| {
            Bound::Included(Term::from_field_i64(fields.day, schema::day_of(d)))
        })
    };
    Some((
        Occur::Must,
        Box::new(RangeQuery::new(bound(request.from), bound(request.to))),
    ))
}

pub(crate) fn scope(
    fields: &Fields,
    who: &Principal,
    readable: &[&'static EntityDef],
    request: &SearchRequest,
) -> Vec<(Occur, Box<dyn Query>)> {
    let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    must.push((Occur::Must, Box::new(term_u64(fields.company, who.company))));
    let entities: Vec<(Occur, Box<dyn Query>)> = readable
        .iter()
        .map(|def| {
            let is_entity = term_u64(fields.entity, u64::from(def.code));
            let q: Box<dyn Query> = match who.own_only(def, Action::Read) {
                Some(user) => Box::new(BooleanQuery::new(vec![
                    (Occur::Must, Box::new(is_entity) as Box<dyn Query>),
                    (Occur::Must, Box::new(term_u64(fields.owner, user))),
                ])),
                None => Box::new(is_entity),
            };
            (Occur::Should, q)
        })
        .collect();
    must.push((Occur::Must, Box::new(BooleanQuery::new(entities))));
    must.extend(dated(fields, request));
    must
}

/// One entry (`key`, `part`), if it is inside `scope`.
pub(crate) fn entry(
    fields: &Fields,
    key: &str,
    part: u32,
    scope: Vec<(Occur, Box<dyn Query>)>,
) -> BooleanQuery {
    let mut must: Vec<(Occur, Box<dyn Query>)> = vec![
        (
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_text(fields.key, key),
                IndexRecordOption::Basic,
            )),
        ),
        (
            Occur::Must,
            Box::new(term_u64(fields.part, u64::from(part))),
        ),
    ];
    must.extend(scope);
    BooleanQuery::new(must)
}

fn term_u64(field: tantivy::schema::Field, value: u64) -> TermQuery {
    TermQuery::new(Term::from_field_u64(field, value), IndexRecordOption::Basic)
}

/// `text` cut into pieces, the words that match the reader's (as the query matches
/// them) marked.
/// The part of highlighted `fragments` around their first hit: some words before it,
/// then up to `max` characters in all, with `…` where text was left out.
pub(crate) fn around_first_hit(fragments: Vec<Fragment>, max: usize) -> Vec<Fragment> {
    const BEFORE: usize = 60;
    let total: usize = fragments.iter().map(|f| f.text.chars().count()).sum();
    if total <= max {
        return fragments;
    }
    let first = fragments.iter().position(|f| f.hit).unwrap_or(0);
    let mut out = Vec::new();
    if first > 0 {
        let lead = &fragments[first - 1].text;
        let n = lead.chars().count();
        let mut kept: String = lead.chars().skip(n.saturating_sub(BEFORE)).collect();
        if n > BEFORE || first > 1 {
            // Start at a word.
            if let Some(space) = kept.find(' ') {
                kept = kept[space + 1..].to_owned();
            }
            kept.insert(0, '…');
        }
        out.push(Fragment {
            text: kept,
            hit: false,
        });
    }
    let mut left = max.saturating_sub(out.first().map_or(0, |f| f.text.chars().count()));
    for f in &fragments[first..] {
        if left == 0 {
            break;
        }
        let n = f.text.chars().count();
        if n <= left {
            out.push(f.clone());
            left -= n;
        } else {
            let mut cut: String = f.text.chars().take(left).collect();
            if !f.hit
                && let Some(space) = cut.rfind(' ')
            {
                cut.truncate(space);
            }
            out.push(Fragment {
                text: cut,
                hit: f.hit,
            });
            left = 0;
        }
    }
    out.push(Fragment {
        text: "…".into(),
        hit: false,
    });
    out
}

pub(crate) fn highlight(text: &str, words: &Words) -> Vec<Fragment> {
    let mut out: Vec<Fragment> = Vec::new();
    let mut push = |piece: &str, hit: bool| {
        if piece.is_empty() {
            return;
        }
        match out.last_mut() {
            Some(last) if last.hit == hit => last.text.push_str(piece),
            _ => out.push(Fragment {
                text: piece.to_string(),
                hit,
            }),
        }
    };
    let mut analyzer = schema::analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut at = 0;
    let last = words.terms.len().saturating_sub(1);
    while stream.advance() {
        let token = stream.token();
        let (from, to) = (token.offset_from, token.offset_to);
        if from < at
            || to > text.len()
            || !text.is_char_boundary(from)
            || !text.is_char_boundary(to)
        {
            continue;
        }
        let matched = words.terms.iter().enumerate().any(|(i, w)| {
            let prefix = i == last && words.last_is_prefix;
            matches(&token.text, w, prefix)
        });
        if matched {
            push(&text[at..from], false);
            push(&text[from..to], true);
            at = to;
        }
    }
    push(&text[at..], false);
    out
}

/// Whether an indexed word matches a searched one as the query does.
fn matches(indexed: &str, searched: &str, prefix: bool) -> bool {
    let n = searched.chars().count();
    if indexed == searched || (prefix && n >= 2 && indexed.starts_with(searched)) {
        return true;
    }
    let d = usize::from(typos(n));
    if d == 0 {
        return false;
    }
    let a: Vec<char> = indexed.chars().collect();
    let b: Vec<char> = searched.chars().collect();
    distance(&a, &b) <= d
}

/// Optimal string alignment distance (a transposition costs one, as in the query).
fn distance(a: &[char], b: &[char]) -> usize {
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[n][m]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn distance_counts_edits_and_transpositions() {
        assert_eq!(distance(&chars("zurich"), &chars("zurich")), 0);
        assert_eq!(distance(&chars("zurich"), &chars("zuirch")), 1);
        assert_eq!(distance(&chars("zurich"), &chars("zrich")), 1);
        assert_eq!(distance(&chars("acme"), &chars("acne")), 1);
        assert_eq!(distance(&chars("kitten"), &chars("sitting")), 3);
    }

    #[test]
    fn matching_follows_the_query() {
        assert!(matches("zurich", "zurich", false));
        assert!(
            matches("zurich", "zurch", false),
            "one typo in five letters"
        );
        assert!(!matches("acme", "acne", false), "no typo in four letters");
        assert!(matches("uhrenhaus", "uhrenhuas", false), "two in nine");
        assert!(matches("zurich", "zur", true), "a prefix being typed");
        assert!(
            !matches("zurich", "zur", false),
            "a finished word is not a prefix"
        );
        assert!(matches("hamburg", "hamb", true));
        assert!(!matches("purchase", "zurch", true), "no typo in a prefix");
    }
}

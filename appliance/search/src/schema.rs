//! The index's fields, its analyzer, and how a record becomes a document.

use std::collections::BTreeMap;

use nexus_kernel::documents::DOCUMENT;
use nexus_kernel::{EntityDef, Image};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::index::SegmentReader;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::{DocId, Index, Score, TantivyDocument};
use time::Date;

/// The analyzer of every text field and of the reader's words: words of letters and
/// digits, lower-cased, accents folded (`Zürich` is found as `zurich`), words over 40
/// bytes dropped.
pub(crate) const ANALYZER: &str = "nexus";

pub(crate) fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

pub(crate) fn register(index: &Index) {
    index.tokenizers().register(ANALYZER, analyzer());
}

#[derive(Debug, Clone)]
pub(crate) struct Fields {
    pub schema: Schema,
    /// `company/entity/id`: the one term a record's document is replaced by.
    pub key: Field,
    /// A passage's place in its document (0 for a record): with `key`, one entry.
    pub part: Field,
    pub company: Field,
    /// The entity's stable code (fast: hits are counted per entity).
    pub entity: Field,
    pub record: Field,
    /// The owner under a record rule; 0 when the entity has none or it is empty.
    pub owner: Field,
    pub title: Field,
    pub body: Field,
    /// The title and the body as one text (indexed only, without positions): what a
    /// question is matched against, so that BM25 weighs them as one document.
    pub all: Field,
    /// Days since 1970-01-01 of the record's first date field.
    pub day: Field,
    /// A document passage's document id (0 for a record).
    pub doc: Field,
    /// Where in its document a passage is (`page 3`, a heading); stored only.
    pub locator: Field,
    /// A passage's page, for documents that have pages (0: none).
    pub page: Field,
}

impl Fields {
    pub fn new() -> Fields {
        let mut b = Schema::builder();
        let text = TextOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(ANALYZER)
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            )
            .set_stored();
        let key = b.add_text_field("key", STRING | STORED);
        let part = b.add_u64_field("part", INDEXED | STORED);
        let company = b.add_u64_field("company", INDEXED | FAST);
        let entity = b.add_u64_field("entity", INDEXED | STORED | FAST);
        let record = b.add_u64_field("record", STORED);
        let owner = b.add_u64_field("owner", INDEXED | FAST);
        let title = b.add_text_field("title", text.clone());
        let body = b.add_text_field("body", text);
        let all = b.add_text_field(
            "all",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(ANALYZER)
                    .set_index_option(IndexRecordOption::WithFreqs),
            ),
        );
        let day = b.add_i64_field("day", INDEXED | STORED);
        let doc = b.add_u64_field("doc", STORED);
        let locator = b.add_text_field("locator", STORED);
        let page = b.add_u64_field("page", STORED);
        Fields {
            schema: b.build(),
            key,
            part,
            company,
            entity,
            record,
            owner,
            title,
            body,
            all,
            day,
            doc,
            locator,
            page,
        }
    }

    /// The tantivy document of an entry.
    pub fn document(&self, e: &Entry) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_text(self.key, &e.key);
        doc.add_u64(self.part, u64::from(e.part));
        doc.add_u64(self.company, e.company);
        doc.add_u64(self.entity, u64::from(e.entity));
        doc.add_u64(self.record, e.record);
        doc.add_u64(self.owner, e.owner);
        doc.add_text(self.title, &e.title);
        doc.add_text(self.body, &e.body);
        doc.add_text(self.all, &e.title);
        doc.add_text(self.all, &e.body);
        if let Some(day) = e.day {
            doc.add_i64(self.day, day);
        }
        if e.doc != 0 {
            doc.add_u64(self.doc, e.doc);
            doc.add_text(self.locator, &e.locator);
            doc.add_u64(self.page, u64::from(e.page));
        }
        doc
    }
}

/// One entry of the indexes (the same for the full-text and the vector index): a
/// record with search fields, or one passage of a document attached to a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// `company/entity/id` of the record, or of the document for a passage: the term
    /// its entries are replaced by.
    pub key: String,
    /// The passage's place in its document (0 for a record).
    pub part: u32,
    pub company: u64,
    /// The code of the entity a reader must be allowed to read (the parent's for a
    /// passage).
    pub entity: u16,
    pub record: u64,
    /// The owner under a record rule; 0 when the entity has none or it is empty.
    pub owner: u64,
    pub title: String,
    pub body: String,
    /// Days since 1970-01-01 of the record's first date field.
    pub day: Option<i64>,
    /// The document a passage is of (0 for a record).
    pub doc: u64,
    pub locator: String,
    pub page: u32,
}

impl Entry {
    /// The entry of one record, from its image (as events and snapshots give it).
    pub fn record(def: &EntityDef, company: u64, id: u64, image: &Image) -> Entry {
        let owner = def
            .owner()
            .and_then(|f| image.get(f.name))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let mut title = String::new();
        if let Some(v) = image.get(def.title_field) {
            super::text_of(v, &mut title);
        }
        if title.is_empty() {
            title = format!("{} #{id}", def.label);
        }
        let mut body = String::new();
        for f in def.search_fields.iter().filter(|f| **f != def.title_field) {
            if let Some(v) = image.get(*f) {
                let before = body.len();
                if !body.is_empty() {
                    body.push_str(" · ");
                }
                super::text_of(v, &mut body);
                if body.len() == before + " · ".len() {
                    body.truncate(before);
                }
            }
        }
        Entry {
            key: key(company, def, id),
            part: 0,
            company,
            entity: def.code,
            record: id,
            owner,
            title,
            body,
            day: super::date_of(def, image).map(day_of),
            doc: 0,
            locator: String::new(),
            page: 0,
        }
    }

    /// Passage number `part` of document `doc` attached to `parent`'s record `record`:
    /// found as that record is, by whoever may read it (its company, entity and
    /// `owner`).
    #[allow(clippy::too_many_arguments)]
    pub fn passage(
        parent: &EntityDef,
        company: u64,
        record: u64,
        owner: u64,
        doc: u64,
        name: &str,
        part: u32,
        passage: &crate::DocPassage,
    ) -> Entry {
        Entry {
            key: key(company, &DOCUMENT, doc),
            part,
            company,
            entity: parent.code,
            record,
            owner,
            title: name.to_owned(),
            body: passage.text.clone(),
            day: None,
            doc,
            locator: passage.locator.clone(),
            page: passage.page.unwrap_or(0),
        }
    }

    /// What the vector index embeds: the title, then the text.
    pub fn text(&self) -> String {
        match (self.title.is_empty(), self.body.is_empty()) {
            (_, true) => self.title.clone(),
            (true, false) => self.body.clone(),
            (false, false) => format!("{}\n{}", self.title, self.body),
        }
    }
}

pub(crate) fn key(company: u64, def: &EntityDef, id: u64) -> String {
    format!("{company}/{}/{id}", def.code)
}

const EPOCH: Date = time::macros::date!(1970 - 01 - 01);

pub(crate) fn day_of(d: Date) -> i64 {
    (d - EPOCH).whole_days()
}

pub(crate) fn date_of_day(day: i64) -> Option<Date> {
    EPOCH.checked_add(time::Duration::days(day))
}

/// Counts the hits per entity code, in the same pass that finds them.
pub(crate) struct EntityCounts;

pub(crate) struct SegmentCounts {
    column: Column<u64>,
    counts: BTreeMap<u64, u64>,
}

impl Collector for EntityCounts {
    type Fruit = BTreeMap<u64, u64>;
    type Child = SegmentCounts;

    fn for_segment(&self, _segment: u32, reader: &SegmentReader) -> tantivy::Result<SegmentCounts> {
        Ok(SegmentCounts {
            column: reader.fast_fields().u64("entity")?,
            counts: BTreeMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<BTreeMap<u64, u64>>) -> tantivy::Result<Self::Fruit> {
        let mut all = BTreeMap::new();
        for fruit in fruits {
            for (code, n) in fruit {
                *all.entry(code).or_insert(0) += n;
            }
        }
        Ok(all)
    }
}

impl SegmentCollector for SegmentCounts {
    type Fruit = BTreeMap<u64, u64>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let Some(code) = self.column.first(doc) {
            *self.counts.entry(code).or_insert(0) += 1;
        }
    }

    fn harvest(self) -> Self::Fruit {
        self.counts
    }
}

/// What a reader may see, as a test of each hit's fast fields: its company, **and** an
/// entity they may read — under a record rule (`Some(user)`), only their own records.
/// The same rule as [`crate::query::scope`], applied to the words' hits as they are
/// collected instead of intersected with every posting list of the company (which
/// costs a multiple of the words' own query when a word is common).
#[derive(Debug, Clone)]
pub(crate) struct Reader {
    pub company: u64,
    pub entities: Vec<(u64, Option<u64>)>,
}

/// `inner`, fed only the hits the [`Reader`] may see (its counts too).
pub(crate) struct Scoped<C> {
    pub reader: Reader,
    pub inner: C,
}

pub(crate) struct ScopedSegment<S> {
    reader: Reader,
    company: Column<u64>,
    entity: Column<u64>,
    owner: Column<u64>,
    inner: S,
    kept: Vec<DocId>,
}

impl<C: Collector> Collector for Scoped<C> {
    type Fruit = C::Fruit;
    type Child = ScopedSegment<C::Child>;

    fn for_segment(&self, segment: u32, reader: &SegmentReader) -> tantivy::Result<Self::Child> {
        let fast = reader.fast_fields();
        Ok(ScopedSegment {
            reader: self.reader.clone(),
            company: fast.u64("company")?,
            entity: fast.u64("entity")?,
            owner: fast.u64("owner")?,
            inner: self.inner.for_segment(segment, reader)?,
            kept: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.inner.requires_scoring()
    }

    fn merge_fruits(
        &self,
        fruits: Vec<<C::Child as SegmentCollector>::Fruit>,
    ) -> tantivy::Result<Self::Fruit> {
        self.inner.merge_fruits(fruits)
    }
}

impl<S: SegmentCollector> ScopedSegment<S> {
    fn visible(&self, doc: DocId) -> bool {
        // A document without a value is seen by nobody.
        self.company.first(doc) == Some(self.reader.company)
            && self.entity.first(doc).is_some_and(|entity| {
                self.reader.entities.iter().any(|(code, own)| {
                    *code == entity && own.is_none_or(|user| self.owner.first(doc) == Some(user))
                })
            })
    }
}

impl<S: SegmentCollector> SegmentCollector for ScopedSegment<S> {
    type Fruit = S::Fruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        if self.visible(doc) {
            self.inner.collect(doc, score);
        }
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        let mut kept = std::mem::take(&mut self.kept);
        kept.clear();
        kept.extend(docs.iter().copied().filter(|d| self.visible(*d)));
        if !kept.is_empty() {
            self.inner.collect_block(&kept);
        }
        self.kept = kept;
    }

    fn harvest(self) -> Self::Fruit {
        self.inner.harvest()
    }
}

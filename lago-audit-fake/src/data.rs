//! Deterministic, lazily generated audit records.
//!
//! Record `i` of a kind is a pure function of the seed and `i`, so a million records cost no
//! memory: a list request generates only the records it looks at. Record 0 is the newest; by
//! default records come in groups of [`TIE_GROUP`] that share a `logged_at` second (Lago's
//! timestamps have second precision, and its ordering has no tie-breaker); a [`Timeline`] can lay
//! them out in groups of any size with gaps between them.

use chrono::{DateTime, Duration, Utc};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Value};
use uuid::Uuid;

/// How many consecutive records share one `logged_at` second.
pub const TIE_GROUP: u64 = 3;

/// The 75 activity types Lago's server emits today, with the resource type each is logged under.
pub const ACTIVITY_TYPES: &[(&str, &str)] = &[
    ("billable_metric.created", "BillableMetric"),
    ("billable_metric.updated", "BillableMetric"),
    ("billable_metric.deleted", "BillableMetric"),
    ("plan.created", "Plan"),
    ("plan.updated", "Plan"),
    ("plan.deleted", "Plan"),
    ("customer.created", "Customer"),
    ("customer.updated", "Customer"),
    ("customer.deleted", "Customer"),
    ("invoice.drafted", "Invoice"),
    ("invoice.ready_to_finalize", "Invoice"),
    ("invoice.failed", "Invoice"),
    ("invoice.created", "Invoice"),
    ("invoice.one_off_created", "Invoice"),
    ("invoice.paid_credit_added", "Invoice"),
    ("invoice.generated", "Invoice"),
    ("invoice.payment_status_updated", "Invoice"),
    ("invoice.payment_overdue", "Invoice"),
    ("invoice.voided", "Invoice"),
    ("invoice.deleted", "Invoice"),
    ("invoice.regenerated", "Invoice"),
    ("invoice.payment_failure", "Invoice"),
    ("payment_receipt.created", "PaymentReceipt"),
    ("payment_receipt.generated", "PaymentReceipt"),
    ("credit_note.created", "CreditNote"),
    ("credit_note.generated", "CreditNote"),
    ("credit_note.refund_failure", "CreditNote"),
    ("billing_entities.created", "BillingEntity"),
    ("billing_entities.updated", "BillingEntity"),
    ("billing_entities.deleted", "BillingEntity"),
    ("subscription.canceled", "Subscription"),
    ("subscription.incomplete", "Subscription"),
    ("subscription.started", "Subscription"),
    ("subscription.terminated", "Subscription"),
    ("subscription.updated", "Subscription"),
    ("wallet.created", "Wallet"),
    ("wallet.updated", "Wallet"),
    ("wallet_transaction.payment_failure", "Wallet"),
    ("wallet_transaction.created", "Wallet"),
    ("wallet_transaction.updated", "Wallet"),
    ("payment.recorded", "Invoice"),
    ("coupon.created", "Coupon"),
    ("coupon.updated", "Coupon"),
    ("coupon.deleted", "Coupon"),
    ("applied_coupon.created", "Coupon"),
    ("applied_coupon.deleted", "Coupon"),
    ("payment_request.created", "PaymentRequest"),
    ("email.sent", "Invoice"),
    ("feature.created", "Entitlement::Feature"),
    ("feature.deleted", "Entitlement::Feature"),
    ("feature.updated", "Entitlement::Feature"),
    ("product_category.created", "ProductCategory"),
    ("product_category.updated", "ProductCategory"),
    ("product_category.deleted", "ProductCategory"),
    ("product.created", "Product"),
    ("product.updated", "Product"),
    ("product.deleted", "Product"),
    ("product_filter.created", "ProductFilter"),
    ("product_filter.updated", "ProductFilter"),
    ("product_filter.deleted", "ProductFilter"),
    ("rate_card.created", "RateCard"),
    ("rate_card.updated", "RateCard"),
    ("rate_card.deleted", "RateCard"),
    ("quote.created", "Quote"),
    ("quote.updated", "Quote"),
    ("quote.approved", "Quote"),
    ("quote.voided", "Quote"),
    ("quote.version_created", "Quote"),
    ("order_form.created", "OrderForm"),
    ("order_form.signed", "OrderForm"),
    ("order_form.file_uploaded", "OrderForm"),
    ("order_form.expired", "OrderForm"),
    ("order_form.voided", "OrderForm"),
    ("order.created", "Order"),
    ("order.executed", "Order"),
];

/// Resource types whose activity logs carry no `external_customer_id`.
const CATALOGUE: &[&str] = &[
    "BillableMetric",
    "Coupon",
    "Plan",
    "BillingEntity",
    "Entitlement::Feature",
    "ProductCategory",
    "Product",
    "ProductFilter",
    "RateCard",
];

/// The users who act through the web application.
pub const USERS: &[&str] = &[
    "dinesh@piedpiper.test",
    "gilfoyle@piedpiper.test",
    "monica+finance@piedpiper.test",
    "jared@piedpiper.test",
    "richard@piedpiper.test",
];

/// The clients (user agents) of logged API calls.
pub const CLIENTS: &[&str] = &[
    "Lago Ruby v1.26.0",
    "Lago Python v1.20.0",
    "lago-go-client/1.9.0",
    "curl/8.5.0",
];

const API_RESOURCES: &[&str] = &[
    "billable_metrics",
    "plans",
    "customers",
    "subscriptions",
    "wallets",
    "coupons",
    "invoices",
    "events",
];

/// The security-log types and their events.
pub const SECURITY_EVENTS: &[(&str, &str)] = &[
    ("api_key", "api_key.created"),
    ("api_key", "api_key.rotated"),
    ("api_key", "api_key.destroyed"),
    ("billing_entity", "billing_entity.updated"),
    ("export", "export.created"),
    ("integration", "integration.created"),
    ("role", "role.updated"),
    ("user", "user.signed_up"),
    ("user", "user.new_device_logged_in"),
    ("user", "user.password_reset_requested"),
    ("webhook_endpoint", "webhook_endpoint.created"),
];

/// A fast, good-enough 64-bit mixer (splitmix64), the only randomness in the generator.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The kinds of log the fake serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `/activity_logs`
    Activity,
    /// `/api_logs`
    Api,
    /// `/security_logs`
    Security,
}

impl Kind {
    fn salt(self) -> u64 {
        match self {
            Kind::Activity => 0xA11C_E000,
            Kind::Api => 0xA91_0000,
            Kind::Security => 0x5EC_0000,
        }
    }
}

/// Where a record lives: the base data set, the records inserted while the server runs, or the
/// records a test added one by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Base record `i` (0 is the newest).
    Base(u64),
    /// The `k`-th record inserted after start (0 is the oldest insert).
    Inserted(u64),
    /// The `j`-th record added with `FakeLago::insert` (any `logged_at`, possibly visible late).
    Extra(u64),
}

impl Slot {
    fn tag(self) -> (u8, u64) {
        match self {
            Slot::Base(i) => (0, i),
            Slot::Inserted(k) => (1, k),
            Slot::Extra(j) => (2, j),
        }
    }
}

/// How base records spread over time: record 0 is the newest, and `logged_at` never increases
/// with the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Timeline {
    /// [`TIE_GROUP`] records per second, one second after another, back from `now`.
    Uniform,
    /// Groups of records sharing one second: `(seconds before now, count)`, newest first
    /// (offsets strictly increasing). Empty seconds between groups are gaps.
    Groups(Vec<(i64, u64)>),
}

/// A bursty timeline of about `records` records, as billing produces them: quiet hours with a
/// record every few minutes, then billing runs that write thousands of records within minutes,
/// in ties of 1 to 40 records a second separated by gaps of seconds (sometimes minutes). The
/// groups for [`Timeline::Groups`], newest first; a pure function of `seed`.
pub fn bursty_groups(seed: u64, records: u64) -> Vec<(i64, u64)> {
    let mut rng = mix(seed ^ 0xB0057);
    let mut next = |n: u64| {
        rng = mix(rng);
        rng % n.max(1)
    };
    let mut groups = Vec::new();
    let (mut offset, mut left) = (0i64, records);
    while left > 0 {
        // A quiet stretch of one to four hours: a record or two every one to twenty minutes.
        let quiet_end = offset + 3_600 * (1 + next(4) as i64);
        while offset < quiet_end && left > 0 {
            let n = (1 + next(2)).min(left);
            groups.push((offset, n));
            left -= n;
            offset += 60 + next(1_140) as i64;
        }
        // A billing run: 1,000 to 6,000 records.
        let mut run = (1_000 + next(5_001)).min(left);
        while run > 0 {
            let n = (1 + next(40)).min(run);
            groups.push((offset, n));
            run -= n;
            left -= n;
            offset += match next(20) {
                0 => 30 + next(150) as i64,
                1..=4 => 2 + next(8) as i64,
                _ => 1,
            };
        }
        offset += 60;
    }
    groups
}

/// The shapes of data an export meets, each a generator of [`Timeline::Groups`] (or the uniform
/// timeline): what the request budget of an export is measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// [`TIE_GROUP`] records every second ([`Timeline::Uniform`]).
    Even,
    /// Groups of 1 to 40 records sharing a second, with 1 to 30 s between groups
    /// ([`tie_groups`]).
    Ties,
    /// Quiet hours, then billing runs of thousands of records ([`bursty_groups`]).
    Bursty,
    /// Dense hours separated by days without a record ([`dense_hours_groups`]).
    DenseHours,
    /// Every record within a single hour ([`dense_hour_groups`]).
    DenseHour,
    /// Even data with a few seconds that each hold more than a page ([`big_second_groups`]).
    BigSeconds,
}

impl Shape {
    /// Every shape, in the order the benchmarks list them.
    pub const ALL: [Shape; 6] = [
        Shape::Even,
        Shape::Ties,
        Shape::Bursty,
        Shape::DenseHours,
        Shape::DenseHour,
        Shape::BigSeconds,
    ];

    /// Its name on the command line and in the benchmark tables (`even`, `ties`, `bursty`,
    /// `dense-hours`, `dense-hour`, `big-seconds`).
    pub fn name(self) -> &'static str {
        match self {
            Shape::Even => "even",
            Shape::Ties => "ties",
            Shape::Bursty => "bursty",
            Shape::DenseHours => "dense-hours",
            Shape::DenseHour => "dense-hour",
            Shape::BigSeconds => "big-seconds",
        }
    }

    /// The timeline of `records` records of this shape; a pure function of `seed`.
    pub fn timeline(self, seed: u64, records: u64) -> Timeline {
        match self {
            Shape::Even => Timeline::Uniform,
            Shape::Ties => Timeline::Groups(tie_groups(seed, records)),
            Shape::Bursty => Timeline::Groups(bursty_groups(seed, records)),
            Shape::DenseHours => Timeline::Groups(dense_hours_groups(seed, records)),
            Shape::DenseHour => Timeline::Groups(dense_hour_groups(seed, records)),
            Shape::BigSeconds => Timeline::Groups(big_second_groups(seed, records)),
        }
    }
}

impl std::str::FromStr for Shape {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Shape::ALL
            .into_iter()
            .find(|shape| shape.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Shape::ALL.iter().map(|s| s.name()).collect();
                format!("unknown shape {s:?} (one of {})", names.join(", "))
            })
    }
}

/// `records` records in groups of 1 to 40 sharing a second, with 1 to 30 s between groups
/// (what another Lago-like server showed: activity logs written in small bursts), newest
/// first; a pure function of `seed`.
pub fn tie_groups(seed: u64, records: u64) -> Vec<(i64, u64)> {
    let mut rng = mix(seed ^ 0x7135);
    let mut next = |n: u64| {
        rng = mix(rng);
        rng % n.max(1)
    };
    let mut groups = Vec::new();
    let (mut offset, mut left) = (0i64, records);
    while left > 0 {
        let n = (1 + next(40)).min(left);
        groups.push((offset, n));
        left -= n;
        offset += 1 + next(30) as i64;
    }
    groups
}

/// `records` records in dense hours (one to eight records every second of an hour) separated by
/// one to five days without a record, newest first; a pure function of `seed`.
pub fn dense_hours_groups(seed: u64, records: u64) -> Vec<(i64, u64)> {
    let mut rng = mix(seed ^ 0xD0075);
    let mut next = |n: u64| {
        rng = mix(rng);
        rng % n.max(1)
    };
    let mut groups = Vec::new();
    let (mut offset, mut left) = (0i64, records);
    while left > 0 {
        let hour_end = offset + 3_600;
        let rate = 1 + next(8);
        while offset < hour_end && left > 0 {
            let n = (1 + next(2 * rate - 1)).min(left);
            groups.push((offset, n));
            left -= n;
            offset += 1;
        }
        offset += 86_400 * (1 + next(5) as i64);
    }
    groups
}

/// `records` records within one hour (every second of it holds some, about `records / 3600`),
/// newest first; a pure function of `seed`.
pub fn dense_hour_groups(seed: u64, records: u64) -> Vec<(i64, u64)> {
    let mut rng = mix(seed ^ 0x0E_1100);
    let mut next = |n: u64| {
        rng = mix(rng);
        rng % n.max(1)
    };
    let mean = records.div_ceil(3_600).max(1);
    let mut groups = Vec::new();
    let (mut offset, mut left) = (0i64, records);
    while left > 0 {
        let n = (1 + next(2 * mean - 1)).min(left);
        groups.push((offset, n));
        left -= n;
        offset += 1;
    }
    groups
}

/// `records` records three a second, except that about every 5,000th record starts a second
/// holding 1,500 to 3,000 records (more than a page of 1,000), newest first; a pure function of
/// `seed`.
pub fn big_second_groups(seed: u64, records: u64) -> Vec<(i64, u64)> {
    let mut rng = mix(seed ^ 0xB165);
    let mut next = |n: u64| {
        rng = mix(rng);
        rng % n.max(1)
    };
    let mut groups = Vec::new();
    let (mut offset, mut left) = (0i64, records);
    let mut until_big = 1_000 + next(4_000);
    while left > 0 {
        let n = if until_big == 0 {
            until_big = 2_000 + next(6_000);
            1_500 + next(1_501)
        } else {
            TIE_GROUP
        }
        .min(left);
        groups.push((offset, n));
        left -= n;
        until_big = until_big.saturating_sub(n);
        offset += 1;
    }
    groups
}

#[derive(Debug)]
struct Layout {
    timeline: Timeline,
    /// For `Groups`: the index one past each group's last record.
    ends: Vec<u64>,
}

impl Layout {
    fn new(timeline: Timeline) -> Self {
        let ends = match &timeline {
            Timeline::Uniform => Vec::new(),
            Timeline::Groups(groups) => groups
                .iter()
                .scan(0u64, |end, (_, n)| {
                    *end += n;
                    Some(*end)
                })
                .collect(),
        };
        Self { timeline, ends }
    }

    /// Seconds before `now` of base record `i`, and the index range of its second.
    fn group(&self, i: u64) -> (i64, u64, u64) {
        match &self.timeline {
            Timeline::Uniform => {
                let g = i / TIE_GROUP;
                (g as i64, g * TIE_GROUP, (g + 1) * TIE_GROUP)
            }
            Timeline::Groups(groups) => {
                let g = self.ends.partition_point(|end| *end <= i);
                match groups.get(g) {
                    Some((offset, _)) => {
                        let start = if g == 0 { 0 } else { self.ends[g - 1] };
                        (*offset, start, self.ends[g])
                    }
                    // Past the last group: one record per second after it.
                    None => {
                        let last = groups.last().map_or(0, |(o, _)| *o);
                        let past = i - self.ends.last().copied().unwrap_or(0);
                        (last + 1 + past as i64, i, i + 1)
                    }
                }
            }
        }
    }

    fn total(&self) -> Option<u64> {
        match &self.timeline {
            Timeline::Uniform => None,
            Timeline::Groups(_) => Some(self.ends.last().copied().unwrap_or(0)),
        }
    }
}

/// Generates records of every kind for one seed.
#[derive(Clone, Debug)]
pub struct Generator {
    seed: u64,
    now: DateTime<Utc>,
    /// Whether `logged_at` carries milliseconds.
    millis: bool,
    /// How far before `now` auto-inserted records start (a server clock behind the client's).
    insert_behind: i64,
    layout: std::sync::Arc<Layout>,
    extras: std::sync::Arc<std::sync::Mutex<Vec<DateTime<Utc>>>>,
}

impl Generator {
    /// A generator whose newest base record is logged at `now`, [`TIE_GROUP`] records a second.
    pub fn new(seed: u64, now: DateTime<Utc>) -> Self {
        Self::with_timeline(seed, now, Timeline::Uniform)
    }

    /// A generator whose base records follow `timeline`.
    pub fn with_timeline(seed: u64, now: DateTime<Utc>, timeline: Timeline) -> Self {
        Self {
            seed,
            now,
            millis: false,
            insert_behind: 0,
            layout: std::sync::Arc::new(Layout::new(timeline)),
            extras: Default::default(),
        }
    }

    /// Gives every `logged_at` milliseconds, as Lago's `DateTime64(3)` column can hold: records
    /// sharing a second spread over it, newest first, so order by `logged_at` is kept.
    pub fn with_millis(mut self, on: bool) -> Self {
        self.millis = on;
        self
    }

    /// Logs auto-inserted records from `seconds` before `now` on instead of after it, as a server
    /// whose clock is behind the client's does: they land among records that already exist.
    pub fn with_inserts_behind(mut self, seconds: i64) -> Self {
        self.insert_behind = seconds.max(0);
        self
    }

    /// Whether auto-inserted records land among the base records (see
    /// [`with_inserts_behind`](Self::with_inserts_behind)).
    pub fn inserts_interleave(&self) -> bool {
        self.insert_behind > 0
    }

    /// Whether timestamps carry milliseconds.
    pub fn has_millis(&self) -> bool {
        self.millis
    }

    /// The number of base records the timeline holds (`None`: unbounded).
    pub fn timeline_len(&self) -> Option<u64> {
        self.layout.total()
    }

    /// The index range `[start, end)` of the base records sharing record `i`'s second.
    pub fn tie_group(&self, i: u64) -> (u64, u64) {
        let (_, start, end) = self.layout.group(i);
        (start, end)
    }

    /// Adds an [`Slot::Extra`] record logged at `at` and returns its slot.
    pub fn add_extra(&self, at: DateTime<Utc>) -> Slot {
        let mut extras = self.extras.lock().unwrap_or_else(|p| p.into_inner());
        extras.push(at);
        Slot::Extra(extras.len() as u64 - 1)
    }

    /// How many [`Slot::Extra`] records exist.
    pub fn extras(&self) -> u64 {
        self.extras.lock().unwrap_or_else(|p| p.into_inner()).len() as u64
    }

    fn rnd(&self, kind: Kind, slot: Slot, field: u64) -> u64 {
        let (tag, n) = slot.tag();
        let tag = u64::from(tag);
        mix(self.seed
            ^ kind.salt()
            ^ mix(n.wrapping_mul(4).wrapping_add(tag))
            ^ mix(field.wrapping_add(0x51)))
    }

    fn pick<T: Copy>(&self, kind: Kind, slot: Slot, field: u64, from: &[T]) -> T {
        from[(self.rnd(kind, slot, field) % from.len() as u64) as usize]
    }

    /// The id of a record: a version-4-shaped uuid that encodes its slot, so a lookup by id needs
    /// no index.
    pub fn id(&self, kind: Kind, slot: Slot) -> Uuid {
        let (tag, n) = slot.tag();
        let mask = mix(self.seed ^ kind.salt());
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.rnd(kind, slot, 0).to_be_bytes());
        bytes[9] = tag;
        let encoded = (n ^ mask) & 0xFFFF_FFFF_FFFF;
        bytes[10..16].copy_from_slice(&encoded.to_be_bytes()[2..]);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// The slot an id encodes, if it is one of this generator's ids for `kind`.
    pub fn slot_of(&self, kind: Kind, id: &str) -> Option<Slot> {
        let uuid = Uuid::parse_str(id).ok()?;
        let b = uuid.as_bytes();
        let mut n = [0u8; 8];
        n[2..].copy_from_slice(&b[10..16]);
        let mask = mix(self.seed ^ kind.salt()) & 0xFFFF_FFFF_FFFF;
        let n = u64::from_be_bytes(n) ^ mask;
        let slot = match b[9] {
            0 => Slot::Base(n),
            1 => Slot::Inserted(n),
            2 => Slot::Extra(n),
            _ => return None,
        };
        (self.id(kind, slot) == uuid).then_some(slot)
    }

    /// When a record was logged. Base records go back in time from `now` along the timeline;
    /// inserted records go forward from `now`, [`TIE_GROUP`] to a second; extra records were
    /// given theirs.
    pub fn logged_at(&self, slot: Slot) -> DateTime<Utc> {
        match slot {
            Slot::Base(i) => {
                let (offset, start, end) = self.layout.group(i);
                let at = self.now - Duration::seconds(offset);
                if self.millis {
                    // Newest (lowest index) latest in the second; never past 999 ms.
                    let ms = ((end - 1 - i) * 1000 / (end - start).max(1)).min(999);
                    at + Duration::milliseconds(ms as i64)
                } else {
                    at
                }
            }
            Slot::Inserted(k) => {
                let at = self.now - Duration::seconds(self.insert_behind)
                    + Duration::seconds(1 + (k / TIE_GROUP) as i64);
                if self.millis {
                    at + Duration::milliseconds(((k % TIE_GROUP) * 333) as i64)
                } else {
                    at
                }
            }
            Slot::Extra(j) => {
                let extras = self.extras.lock().unwrap_or_else(|p| p.into_inner());
                extras.get(j as usize).copied().unwrap_or(self.now)
            }
        }
    }

    /// The `logged_at` of the newest base record.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// An activity log as Lago's server sends it.
    pub fn activity_log(&self, slot: Slot) -> ActivityFacts {
        let k = Kind::Activity;
        let (activity_type, resource_type) = self.pick(k, slot, 1, ACTIVITY_TYPES);
        let source = self.pick(k, slot, 2, &["api", "front", "system"]);
        let user_email = (source == "front").then(|| self.pick(k, slot, 3, USERS));
        let resource_id = Uuid::from_u64_pair(self.rnd(k, slot, 4), self.rnd(k, slot, 5) | 1);
        let customer = self.rnd(k, slot, 6) % 50;
        let external_customer_id =
            (!CATALOGUE.contains(&resource_type)).then(|| format!("cust_{customer:03}"));
        let external_subscription_id = (resource_type == "Subscription")
            .then(|| format!("sub_{customer:03}_{}", self.rnd(k, slot, 7) % 4));
        ActivityFacts {
            id: self.id(k, slot),
            activity_type,
            resource_type,
            source,
            user_email,
            resource_id,
            external_customer_id,
            external_subscription_id,
            logged_at: self.logged_at(slot),
            amount: self.rnd(k, slot, 8) % 100_000,
        }
    }

    /// An API log as Lago's server sends it.
    pub fn api_log(&self, slot: Slot) -> ApiFacts {
        let k = Kind::Api;
        let resource = self.pick(k, slot, 1, API_RESOURCES);
        let method = self.pick(k, slot, 2, &["post", "post", "put", "delete"]);
        let status = self.pick(
            k,
            slot,
            3,
            &[200u16, 200, 200, 200, 201, 400, 404, 422, 422, 500],
        );
        let request_id_kind = self.rnd(k, slot, 4) % 10;
        let code = format!("code_{}", self.rnd(k, slot, 5) % 1_000_000);
        let path = match method {
            "post" => format!("/api/v1/{resource}"),
            _ => format!("/api/v1/{resource}/{code}"),
        };
        let id = self.id(k, slot);
        ApiFacts {
            request_id: match request_id_kind {
                // Callers may send their own X-Request-Id; Lago keeps it (it is looked up like any id).
                0 => format!("req-{}", id.simple()),
                // A caller that reuses its X-Request-Id (a retried call, a fixed header): several
                // records, often in the same second, share it. Their content still differs.
                1 | 2 => {
                    let (tag, n) = slot.tag();
                    format!(
                        "retry-{:012x}",
                        mix(self.seed ^ u64::from(tag) ^ (n / 6)) >> 16
                    )
                }
                _ => id.to_string(),
            },
            id,
            client: self.pick(k, slot, 6, CLIENTS),
            method,
            status,
            path,
            resource,
            code,
            logged_at: self.logged_at(slot),
        }
    }

    /// A security log as Lago's server sends it.
    pub fn security_log(&self, slot: Slot) -> SecurityFacts {
        let k = Kind::Security;
        let (log_type, log_event) = self.pick(k, slot, 1, SECURITY_EVENTS);
        let user = self.rnd(k, slot, 2) % USERS.len() as u64;
        SecurityFacts {
            id: self.id(k, slot),
            log_type,
            log_event,
            user_email: (log_type != "api_key" || user.is_multiple_of(2))
                .then(|| USERS[user as usize]),
            user_id: Uuid::from_u64_pair(0x5EC0_0000_0000_0000 | user, user + 1),
            api_key_id: Uuid::from_u64_pair(0xA91E_0000_0000_0000, 1 + self.rnd(k, slot, 3) % 3),
            logged_at: self.logged_at(slot),
        }
    }
}

/// The facts of one activity log (what filters look at); serialises as the server sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityFacts {
    /// `activity_id`
    pub id: Uuid,
    /// `activity_type`
    pub activity_type: &'static str,
    /// `resource_type`
    pub resource_type: &'static str,
    /// `activity_source`
    pub source: &'static str,
    /// `user_email` (null when the action came through an API key)
    pub user_email: Option<&'static str>,
    /// `resource_id`
    pub resource_id: Uuid,
    /// `external_customer_id` (null for catalogue resources)
    pub external_customer_id: Option<String>,
    /// `external_subscription_id` (set only for subscriptions)
    pub external_subscription_id: Option<String>,
    /// `logged_at`
    pub logged_at: DateTime<Utc>,
    amount: u64,
}

impl ActivityFacts {
    /// The record as the server sends it: no `organization_id`, string-valued maps with nested
    /// data as JSON text, `{}` changes unless the type is an `*.updated`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("records serialise")
    }
}

impl Serialize for ActivityFacts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Object<'a>(&'a ActivityFacts);
        impl Serialize for Object<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let f = self.0;
                let mut m = s.serialize_map(None)?;
                m.serialize_entry("lago_id", &f.resource_id)?;
                m.serialize_entry("amount_cents", &format_args!("{}", f.amount))?;
                m.serialize_entry("taxes", r#"[{"code":"vat","rate":20.0}]"#)?;
                m.serialize_entry("description", &())?;
                if let Some(c) = &f.external_customer_id {
                    m.serialize_entry("external_customer_id", c)?;
                }
                m.end()
            }
        }
        struct Changes<'a>(&'a ActivityFacts);
        impl Serialize for Changes<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let f = self.0;
                let mut m = s.serialize_map(None)?;
                if f.activity_type.ends_with(".updated") {
                    m.serialize_entry(
                        "amount_cents",
                        &format_args!("[{}, {}]", f.amount / 2, f.amount),
                    )?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(12))?;
        m.serialize_entry("activity_id", &self.id)?;
        m.serialize_entry("user_email", &self.user_email)?;
        m.serialize_entry("activity_type", self.activity_type)?;
        m.serialize_entry("activity_source", self.source)?;
        m.serialize_entry("activity_object", &Object(self))?;
        m.serialize_entry("activity_object_changes", &Changes(self))?;
        m.serialize_entry("external_customer_id", &self.external_customer_id)?;
        m.serialize_entry("external_subscription_id", &self.external_subscription_id)?;
        m.serialize_entry("resource_id", &self.resource_id)?;
        m.serialize_entry("resource_type", self.resource_type)?;
        m.serialize_entry("logged_at", &self.logged_at)?;
        m.serialize_entry("created_at", &self.logged_at)?;
        m.end()
    }
}

/// The facts of one API log.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiFacts {
    /// The uuid the record is addressed by in this fake.
    pub id: Uuid,
    /// `request_id` (a uuid, or a caller's own X-Request-Id)
    pub request_id: String,
    /// `client`
    pub client: &'static str,
    /// `http_method`
    pub method: &'static str,
    /// `http_status`
    pub status: u16,
    /// `request_path` (with the `/api/v1` prefix)
    pub path: String,
    resource: &'static str,
    code: String,
    /// `logged_at`
    pub logged_at: DateTime<Utc>,
}

impl ApiFacts {
    /// The record as the server sends it: object-valued, string-valued-map bodies.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("records serialise")
    }
}

impl Serialize for ApiFacts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Body<'a>(&'a ApiFacts);
        impl Serialize for Body<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let f = self.0;
                let mut m = s.serialize_map(None)?;
                if f.method != "delete" {
                    m.serialize_entry("code", &f.code)?;
                    m.serialize_entry("name", f.resource)?;
                    m.serialize_entry("filters", r#"[{"key":"region"}]"#)?;
                }
                m.end()
            }
        }
        struct Answer<'a>(&'a ApiFacts);
        impl Serialize for Answer<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let f = self.0;
                let mut m = s.serialize_map(None)?;
                if f.status < 400 {
                    m.serialize_entry("lago_id", &f.id)?;
                    m.serialize_entry("code", &f.code)?;
                } else {
                    m.serialize_entry("status", &format_args!("{}", f.status))?;
                    m.serialize_entry("error", "Unprocessable Entity")?;
                    m.serialize_entry("code", "validation_errors")?;
                    m.serialize_entry("error_details", r#"{"code":["value_already_exist"]}"#)?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(12))?;
        m.serialize_entry("request_id", &self.request_id)?;
        m.serialize_entry("api_version", "v1")?;
        m.serialize_entry("client", self.client)?;
        m.serialize_entry("http_method", self.method)?;
        m.serialize_entry("http_status", &self.status)?;
        m.serialize_entry("request_origin", "https://app.lago.dev/")?;
        m.serialize_entry("request_path", &self.path)?;
        m.serialize_entry("request_body", &Body(self))?;
        m.serialize_entry("request_response", &Answer(self))?;
        m.serialize_entry("logged_at", &self.logged_at)?;
        m.serialize_entry("created_at", &self.logged_at)?;
        m.end()
    }
}

/// The facts of one security log.
#[derive(Clone, Debug, PartialEq)]
pub struct SecurityFacts {
    /// `log_id`
    pub id: Uuid,
    /// `log_type`
    pub log_type: &'static str,
    /// `log_event`
    pub log_event: &'static str,
    /// `user_email`
    pub user_email: Option<&'static str>,
    /// The acting user's id (filter `user_ids[]`).
    pub user_id: Uuid,
    /// The API key concerned (filter `api_key_ids[]`).
    pub api_key_id: Uuid,
    /// `logged_at`
    pub logged_at: DateTime<Utc>,
}

impl SecurityFacts {
    /// The record as the server sends it (nested values are real JSON here).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("records serialise")
    }
}

impl Serialize for SecurityFacts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Resources<'a>(&'a SecurityFacts);
        impl Serialize for Resources<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("api_key_id", &self.0.api_key_id)?;
                m.serialize_entry("user_id", &self.0.user_id)?;
                m.serialize_entry("permissions", &json!({"activity_log": ["read"]}))?;
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(8))?;
        m.serialize_entry("log_id", &self.id)?;
        m.serialize_entry("log_type", self.log_type)?;
        m.serialize_entry("log_event", self.log_event)?;
        m.serialize_entry("user_email", &self.user_email)?;
        m.serialize_entry("resources", &Resources(self))?;
        m.serialize_entry(
            "device_info",
            &json!({"browser": "Firefox", "os": "Linux", "ip_address": "192.0.2.10"}),
        )?;
        m.serialize_entry("logged_at", &self.logged_at)?;
        m.serialize_entry("created_at", &self.logged_at)?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator() -> Generator {
        Generator::new(42, "2025-04-01T00:00:00Z".parse().unwrap())
    }

    #[test]
    fn ids_encode_their_slot() {
        let g = generator();
        for slot in [Slot::Base(0), Slot::Base(999_999), Slot::Inserted(3)] {
            for kind in [Kind::Activity, Kind::Api, Kind::Security] {
                let id = g.id(kind, slot).to_string();
                assert_eq!(g.slot_of(kind, &id), Some(slot));
            }
        }
        assert_eq!(
            g.slot_of(Kind::Api, &g.id(Kind::Activity, Slot::Base(1)).to_string()),
            None
        );
        assert_eq!(g.slot_of(Kind::Api, "not-a-uuid"), None);
        assert_eq!(g.slot_of(Kind::Api, &Uuid::nil().to_string()), None);
    }

    #[test]
    fn generation_is_deterministic_and_server_shaped() {
        let a = generator().activity_log(Slot::Base(7));
        let b = generator().activity_log(Slot::Base(7));
        assert_eq!(a, b);
        let json = a.to_json();
        assert!(json.get("organization_id").is_none());
        assert!(json["activity_object"]
            .as_object()
            .unwrap()
            .values()
            .all(|v| v.is_string() || v.is_null()));
        for i in 0..2000 {
            let f = generator().activity_log(Slot::Base(i));
            assert_eq!(f.user_email.is_none(), f.source != "front");
            if CATALOGUE.contains(&f.resource_type) {
                assert!(f.external_customer_id.is_none());
            }
        }
    }

    #[test]
    fn all_75_activity_types_appear() {
        let g = generator();
        let seen: std::collections::HashSet<_> = (0..20_000)
            .map(|i| g.activity_log(Slot::Base(i)).activity_type)
            .collect();
        assert_eq!(ACTIVITY_TYPES.len(), 75);
        assert_eq!(seen.len(), 75);
    }

    #[test]
    fn timestamps_descend_in_tie_groups() {
        let g = generator();
        assert_eq!(g.logged_at(Slot::Base(0)), g.logged_at(Slot::Base(2)));
        assert!(g.logged_at(Slot::Base(3)) < g.logged_at(Slot::Base(2)));
        assert!(g.logged_at(Slot::Inserted(0)) > g.logged_at(Slot::Base(0)));
    }
}

#[cfg(test)]
mod shape_tests {
    use super::*;

    #[test]
    fn every_shape_lays_out_exactly_its_records_newest_first() {
        for shape in Shape::ALL {
            assert_eq!(shape.name().parse::<Shape>(), Ok(shape));
            for (seed, n) in [(1u64, 1u64), (5, 10_000), (6, 50_000)] {
                let Timeline::Groups(groups) = shape.timeline(seed, n) else {
                    assert_eq!(shape, Shape::Even);
                    continue;
                };
                assert_eq!(groups.iter().map(|(_, c)| c).sum::<u64>(), n, "{shape:?}");
                assert!(groups.iter().all(|(_, c)| *c > 0), "{shape:?}");
                assert!(groups.windows(2).all(|w| w[0].0 < w[1].0), "{shape:?}");
                assert_eq!(
                    groups,
                    shape.timeline(seed, n).groups(),
                    "{shape:?}: a pure function"
                );
            }
        }
        // Seconds that hold more than a page, gaps of days, one hour.
        let big = big_second_groups(5, 50_000);
        assert!(big.iter().filter(|(_, c)| *c > 1_000).count() >= 5);
        let days = dense_hours_groups(5, 50_000);
        assert!(days.windows(2).any(|w| w[1].0 - w[0].0 >= 86_400));
        let hour = dense_hour_groups(5, 50_000);
        assert!(hour.last().unwrap().0 < 3_600);
        assert!("weekly".parse::<Shape>().is_err());
    }

    impl Timeline {
        fn groups(self) -> Vec<(i64, u64)> {
            match self {
                Timeline::Groups(g) => g,
                Timeline::Uniform => Vec::new(),
            }
        }
    }
}

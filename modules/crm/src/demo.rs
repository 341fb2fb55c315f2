//! The demo company: a few hundred plausible customers and their contacts, generated
//! deterministically so every box (and every test) sees the same data.

use time::{Date, Duration};

use nexus_kernel::{Kernel, KernelError, ListQuery, Principal};

use crate::entities::{CRM, CUSTOMER, Contact, Customer, CustomerStatus};

const FIRST: &[&str] = &[
    "Alpine",
    "Harbor",
    "Cedar",
    "Summit",
    "Blue River",
    "Northwind",
    "Granite",
    "Maple",
    "Silver Oak",
    "Redwood",
    "Lakeside",
    "Ironbridge",
    "Sunrise",
    "Meadow",
    "Coastal",
    "Pioneer",
    "Evergreen",
    "Falcon",
    "Golden Gate",
    "Riverside",
    "Highland",
    "Copper",
    "Orchard",
    "Beacon",
    "Willow",
];
const SECOND: &[&str] = &[
    "Bakery",
    "Logistics",
    "Dental",
    "Architects",
    "Print Shop",
    "Consulting",
    "Motors",
    "Florists",
    "Engineering",
    "Outfitters",
    "Veterinary",
    "Brewing",
    "Legal",
    "Hardware",
    "Studios",
    "Catering",
    "Electric",
    "Pharmacy",
    "Roofing",
    "Analytics",
];
const SUFFIX: &[&str] = &["Ltd", "GmbH", "LLC", "& Co", "AG", "Inc", "SARL", "BV"];
const CITIES: &[(&str, &str)] = &[
    ("Zurich", "Switzerland"),
    ("Geneva", "Switzerland"),
    ("Berlin", "Germany"),
    ("Munich", "Germany"),
    ("Vienna", "Austria"),
    ("Lyon", "France"),
    ("Paris", "France"),
    ("Amsterdam", "Netherlands"),
    ("London", "United Kingdom"),
    ("Leeds", "United Kingdom"),
    ("Dublin", "Ireland"),
    ("Boston", "United States"),
    ("Denver", "United States"),
    ("Toronto", "Canada"),
    ("Milan", "Italy"),
    ("Madrid", "Spain"),
];
const PEOPLE: &[&str] = &[
    "Anna", "Ben", "Chiara", "David", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kaito",
    "Lena", "Marco", "Nora", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tara",
];
const SURNAMES: &[&str] = &[
    "Keller", "Moreau", "Schmidt", "Rossi", "Novak", "Berg", "Okafor", "Tanaka", "Weber", "Larsen",
    "Costa", "Meier", "Dubois", "Fischer", "Brennan", "Haas",
];
const TITLES: &[&str] = &[
    "Owner",
    "Office Manager",
    "Accountant",
    "Purchasing",
    "Operations Lead",
    "Director",
];

/// A tiny deterministic generator (SplitMix64), so demo data is the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

/// One generated customer.
pub fn demo_customer(n: u64, seed: u64) -> Customer {
    let mut rng = Rng(seed ^ n.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let (city, country) = CITIES[(rng.next() % CITIES.len() as u64) as usize];
    let base = format!("{} {}", rng.pick(FIRST), rng.pick(SECOND));
    // The running number keeps names unique however many are generated.
    let name = format!("{base} {} {n:05}", rng.pick(SUFFIX));
    let slug: String = base
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    // Mostly active customers, some leads, a few on hold or gone.
    let status = match rng.next() % 10 {
        0..=5 => CustomerStatus::Active,
        6 | 7 => CustomerStatus::Lead,
        8 => CustomerStatus::OnHold,
        _ => CustomerStatus::Former,
    };
    let customer_since = Date::from_calendar_date(2019, time::Month::January, 1)
        .map(|d| d + Duration::days((rng.next() % 2500) as i64))
        .ok();
    Customer {
        name,
        email: Some(format!("office{n}@{slug}.example")),
        phone: Some(format!(
            "+41 44 {:03} {:02} {:02}",
            rng.next() % 1000,
            rng.next() % 100,
            rng.next() % 100
        )),
        city: Some(city.into()),
        country: Some(country.into()),
        status,
        credit_limit: Some(((rng.next() % 200) as i64 + 1) * 25_000),
        customer_since,
        tax_id: None,
        notes: None,
        owner: None,
    }
}

/// Seeds `customers` demo customers (each with one or two contacts) into a company,
/// unless it already has customers. Returns how many records it created.
pub async fn seed(kernel: &Kernel, company: u64, customers: u64) -> Result<usize, KernelError> {
    let who = Principal::system(company);
    let existing = kernel
        .list(
            &who,
            &CUSTOMER,
            &ListQuery {
                limit: 1,
                ..Default::default()
            },
        )?
        .total;
    if existing > 0 {
        return Ok(0);
    }
    // Many records per command: one event each, one fsync per chunk.
    const CHUNK: u64 = 200;
    let mut made = 0;
    let mut n = 0;
    while n < customers {
        let upto = (n + CHUNK).min(customers);
        let range = n..upto;
        made += kernel
            .command(&CRM, &who, move |cmd| {
                let mut made = 0;
                for i in range {
                    let cust = cmd.insert(&demo_customer(i, 42))?;
                    made += 1;
                    let mut rng = Rng(i ^ 0xC0FFEE);
                    for _ in 0..(1 + rng.next() % 2) {
                        let first = rng.pick(PEOPLE);
                        let last = rng.pick(SURNAMES);
                        let domain = cust
                            .email
                            .as_deref()
                            .and_then(|e| e.split('@').nth(1))
                            .unwrap_or("example.com");
                        cmd.insert(&Contact {
                            name: format!("{first} {last}"),
                            customer: Some(cust.id),
                            job_title: Some(rng.pick(TITLES).into()),
                            email: Some(format!(
                                "{}.{}@{domain}",
                                first.to_lowercase(),
                                last.to_lowercase()
                            )),
                            phone: None,
                        })?;
                        made += 1;
                    }
                }
                Ok(made)
            })
            .await?;
        n = upto;
    }
    Ok(made)
}

//! CRM: customers and their contacts.
//!
//! * [`entities`]: `customer` and `contact` (the generic record pages serve their
//!   lists, forms, API, history and exports), the Sales and Viewer roles, and
//!   [`entities::CRM`], the module as the kernel knows it.
//! * [`demo`]: a few hundred deterministic demo customers with their contacts.
//! * [`tools`]: its read-only questions for the assistant (`crm.find_customers`).
//! * [`web::MODULE`]: its navigation (the server registers it with one line).
//!
//! Other modules refer to customers by entity name (`Ref<Customer>` over
//! `entity_name!(Customer = "customer")`),
//! which the registry checks when the modules are installed.

pub mod demo;
pub mod entities;
pub mod tools;
pub mod web;

pub use demo::demo_customer;
pub use entities::{CONTACT, CRM, CUSTOMER, Contact, Customer, CustomerStatus};

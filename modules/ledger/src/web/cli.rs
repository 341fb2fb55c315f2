//! `nexus ledger …`: the ledger's subcommands (run with the appliance stopped).

use clap::{Arg, ArgMatches, Command};
use nexus_kernel::{Kernel, Principal};
use nexus_web::module::CliFuture;

pub fn command() -> Command {
    Command::new("ledger")
        .about("The books")
        .subcommand_required(true)
        .subcommand(
            Command::new("export")
                .about("Write a company's posted journal entries to standard output")
                .arg(
                    Arg::new("format")
                        .long("format")
                        .value_parser(["beancount"])
                        .default_value("beancount")
                        .help(
                            "The format; beancount is the one there is (check it with bean-check)",
                        ),
                )
                .arg(
                    Arg::new("company")
                        .long("company")
                        .help("The company, by name or id (default: the first company)"),
                ),
        )
}

pub fn run(kernel: Kernel, matches: ArgMatches) -> CliFuture {
    Box::pin(async move {
        match matches.subcommand() {
            Some(("export", args)) => export(
                &kernel,
                args.get_one::<String>("company").map(String::as_str),
            ),
            _ => Err("nexus ledger: say what to do (see nexus ledger --help)".into()),
        }
    })
}

fn export(kernel: &Kernel, company: Option<&str>) -> Result<(), String> {
    use std::io::Write;
    let companies = kernel.companies().map_err(|e| e.to_string())?;
    let id = match company {
        None => kernel
            .default_company()
            .map_err(|e| e.to_string())?
            .ok_or("no company exists yet")?,
        Some(wanted) => companies
            .iter()
            .find(|(id, name)| name.eq_ignore_ascii_case(wanted) || id.to_string() == wanted)
            .map(|(id, _)| *id)
            .ok_or_else(|| {
                let known: Vec<String> = companies
                    .iter()
                    .map(|(id, name)| format!("{name} (id {id})"))
                    .collect();
                format!(
                    "there is no company \"{wanted}\"; there are: {}",
                    known.join(", ")
                )
            })?,
    };
    let journal = crate::books::export_beancount(kernel, &Principal::system(id))
        .map_err(|e| e.to_string())?;
    std::io::stdout()
        .lock()
        .write_all(journal.as_bytes())
        .map_err(|e| format!("writing the export: {e}"))
}

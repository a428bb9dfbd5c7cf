//! Generated datasets, deterministic from a seed: `tiny` (a few items of
//! every kind, for unit tests), `demo` (ten users per provider, attachments
//! shared by many users, nested folders, recurring events, files up to
//! 20 MB, Google Docs) and `bench` (sized by flags).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

use crate::content::{Attachment, Content, MailSpec};
use crate::world::*;

/// Which dataset, and for `bench` its size.
#[derive(Clone, Debug)]
pub struct DatasetSpec {
    pub name: &'static str,
    pub users: u32,
    pub messages_per_user: u32,
    pub message_bytes: (u64, u64),
    pub events_per_user: u32,
    pub files_per_user: u32,
    pub file_bytes: (u64, u64),
    /// One file this large in the first user's drive.
    pub big_file: Option<u64>,
    /// An attachment of this size sent to every user.
    pub shared_attachment: Option<u64>,
    /// Google Docs editor files per user, and one over the export limit.
    pub google_docs: bool,
}

impl DatasetSpec {
    pub fn tiny() -> Self {
        Self {
            name: "tiny",
            users: 3,
            messages_per_user: 6,
            message_bytes: (1_000, 20_000),
            events_per_user: 3,
            files_per_user: 4,
            file_bytes: (0, 200_000),
            big_file: None,
            shared_attachment: Some(50_000),
            google_docs: true,
        }
    }

    pub fn demo() -> Self {
        Self {
            name: "demo",
            users: 10,
            messages_per_user: 30,
            message_bytes: (2_000, 200_000),
            events_per_user: 6,
            files_per_user: 6,
            file_bytes: (0, 2_000_000),
            big_file: Some(20 * 1024 * 1024),
            shared_attachment: Some(1024 * 1024),
            google_docs: true,
        }
    }

    pub fn bench(
        users: u32,
        messages_per_user: u32,
        message_bytes: (u64, u64),
        files_per_user: u32,
        file_bytes: (u64, u64),
    ) -> Self {
        Self {
            name: "bench",
            users,
            messages_per_user,
            message_bytes,
            events_per_user: 5,
            files_per_user,
            file_bytes,
            big_file: None,
            shared_attachment: None,
            google_docs: false,
        }
    }
}

const FIRST: &[&str] = &[
    "Adele",
    "Alex",
    "Megan",
    "Lynne",
    "Diego",
    "Isaiah",
    "Johanna",
    "Lee",
    "Nestor",
    "Patti",
    "Pradeep",
    "Grady",
    "Henrietta",
    "Irvin",
    "Joni",
    "Lidia",
    "Miriam",
    "Raul",
    "Zoë",
    "Émile",
];
const LAST: &[&str] = &[
    "Vance",
    "Wilber",
    "Bowen",
    "Robbins",
    "Siciliani",
    "Langer",
    "Lauer",
    "Gu",
    "Wilke",
    "Fernandez",
    "Gupta",
    "Archie",
    "Cerrano",
    "Sherrod",
    "Sherman",
    "Holloway",
    "Graham",
    "Ramírez",
    "Moreau",
    "Okafor",
];
const WORDS: &[&str] = &[
    "budget",
    "review",
    "quarterly",
    "plan",
    "launch",
    "contract",
    "invoice",
    "roadmap",
    "hiring",
    "design",
    "offsite",
    "report",
    "migration",
    "customer",
    "renewal",
    "forecast",
    "security",
    "audit",
    "training",
    "release",
];

/// The dataset's fixed clock: items are dated relative to it.
fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 9, 1, 8, 0, 0)
        .single()
        .expect("valid date")
}

struct Gen {
    rng: ChaCha8Rng,
    seed: u64,
    counter: u64,
}

impl Gen {
    fn new(seed: u64, stream: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Self {
            rng,
            seed,
            counter: 0,
        }
    }

    /// A fresh content seed: distinct per item, stable per dataset seed.
    fn content_seed(&mut self) -> u64 {
        self.counter += 1;
        self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (self.counter << 20)
            ^ self.rng.gen::<u32>() as u64
    }

    fn id_hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from_digit(self.rng.gen_range(0..16), 16).expect("hex digit"))
            .collect()
    }

    fn guid(&mut self) -> String {
        let h = self.id_hex(32);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }

    fn words(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| WORDS[self.rng.gen_range(0..WORDS.len())])
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn size(&mut self, (min, max): (u64, u64)) -> u64 {
        if max <= min {
            min
        } else {
            self.rng.gen_range(min..=max)
        }
    }

    fn time(&mut self, days: i64) -> DateTime<Utc> {
        base_time() + Duration::minutes(self.rng.gen_range(0..days.max(1) * 24 * 60))
    }

    /// A plain-text body of about `bytes` bytes.
    fn body(&mut self, bytes: u64) -> String {
        let mut text = String::from("Hello,\n\n");
        while (text.len() as u64) < bytes {
            let line = self.words(12);
            text.push_str(&line);
            text.push_str(".\n");
        }
        text.push_str("\nRegards\n");
        text
    }
}

fn person(i: usize) -> (String, String) {
    (
        FIRST[i % FIRST.len()].to_owned(),
        LAST[(i / FIRST.len() + i) % LAST.len()].to_owned(),
    )
}

fn login(first: &str, last: &str) -> String {
    let ascii = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphabetic())
            .collect::<String>()
            .to_lowercase()
    };
    format!("{}.{}", ascii(first), ascii(last))
}

pub fn build(spec: &DatasetSpec, seed: u64) -> World {
    let mut g = Gen::new(seed, 1);
    let app = M365App {
        client_id: g.guid(),
        client_secret: format!("sim~{}", g.id_hex(32)),
    };
    let mut world = World::new(app, service_account(&mut g, seed));
    let m365_domain = format!("{}365.example", spec.name);
    let google_domain = format!("{}ws.example", spec.name);
    let tenant = build_m365(&mut world, &mut Gen::new(seed, 2), spec, &m365_domain);
    world.m365.push(tenant);
    let domain = build_google(
        &mut world,
        &mut Gen::new(seed, 3),
        spec,
        &google_domain,
        seed,
    );
    world.google.push(domain);
    world
}

// ---------------------------------------------------------------- Microsoft

fn build_m365(world: &mut World, g: &mut Gen, spec: &DatasetSpec, domain: &str) -> M365Tenant {
    let mut tenant = M365Tenant {
        id: g.guid(),
        domain: domain.to_owned(),
        consented: false,
        next_consent: None,
        users: BTreeMap::new(),
    };
    let people: Vec<(String, String, String)> = (0..spec.users as usize)
        .map(|i| {
            let (first, last) = person(i);
            let upn = format!("{}@{domain}", login(&first, &last));
            (first, last, upn)
        })
        .collect();
    let shared = spec.shared_attachment.map(|len| Content::Random {
        seed: g.content_seed(),
        len,
    });
    for (i, (first, last, upn)) in people.iter().enumerate() {
        let id = g.guid();
        let mut user = M365User {
            id: id.clone(),
            upn: upn.clone(),
            display_name: format!("{first} {last}"),
            has_mailbox: true,
            folders: BTreeMap::new(),
            folder_log: ChangeLog::default(),
            messages: BTreeMap::new(),
            events: BTreeMap::new(),
            calendar_log: ChangeLog::default(),
            drive: Drive::default(),
        };
        let seq = world.next_seq();
        mail_folders(&mut user, g, seq);
        let folders: Vec<String> = [
            "inbox",
            "inbox",
            "inbox",
            "projects",
            "2026",
            "sentitems",
            "archive",
        ]
        .iter()
        .map(|w| {
            user.folders
                .values()
                .find(|f| f.well_known == Some(*w) || f.display_name.to_lowercase() == *w)
                .map(|f| f.id.clone())
                .expect("folder exists")
        })
        .collect();
        for n in 0..spec.messages_per_user {
            let folder = folders[n as usize % folders.len()].clone();
            let sender = &people[(i + 1 + n as usize) % people.len()];
            let size = g.size(spec.message_bytes);
            let attachment = (n % 4 == 1).then(|| Attachment {
                name: format!("{}.pdf", g.words(2).replace(' ', "-")),
                content_type: "application/pdf".into(),
                content: Content::Random {
                    seed: g.content_seed(),
                    len: size / 2,
                },
            });
            let body_len = if attachment.is_some() { size / 2 } else { size };
            let date = g.time(80);
            let message = m365_message(
                g,
                folder,
                (format!("{} {}", sender.0, sender.1), sender.2.clone()),
                vec![(user.display_name.clone(), upn.clone())],
                date,
                body_len,
                attachment,
                None,
            );
            let seq = world.next_seq();
            user.folders
                .get_mut(&message.folder_id)
                .expect("folder")
                .log
                .upsert(seq, &message.id);
            user.messages.insert(message.id.clone(), message);
        }
        if let Some(content) = &shared {
            // The same attachment, sent by the first user to everyone.
            let inbox = user
                .folders
                .values()
                .find(|f| f.well_known == Some("inbox"))
                .map(|f| f.id.clone())
                .expect("inbox");
            let sender = &people[0];
            let attachment = Attachment {
                name: "All-hands deck.pdf".into(),
                content_type: "application/pdf".into(),
                content: content.clone(),
            };
            let message = m365_message(
                g,
                inbox,
                (format!("{} {}", sender.0, sender.1), sender.2.clone()),
                vec![(user.display_name.clone(), upn.clone())],
                base_time() + Duration::days(3),
                500,
                Some(attachment),
                Some("All-hands deck".into()),
            );
            let seq = world.next_seq();
            user.folders
                .get_mut(&message.folder_id)
                .expect("folder")
                .log
                .upsert(seq, &message.id);
            user.messages.insert(message.id.clone(), message);
        }
        for n in 0..spec.events_per_user {
            let start = base_time()
                + Duration::days(i64::from(n) * 5 + 30)
                + Duration::hours(i64::from(n % 8));
            let recurring = n == 0;
            let mut exceptions = BTreeMap::new();
            if recurring && spec.events_per_user > 1 {
                exceptions.insert(
                    start + Duration::weeks(2),
                    EventException {
                        subject: Some("Weekly sync (moved agenda)".into()),
                        cancelled: false,
                    },
                );
                exceptions.insert(
                    start + Duration::weeks(4),
                    EventException {
                        subject: None,
                        cancelled: true,
                    },
                );
            }
            let event = Event {
                id: format!("AAMkAE{}=", g.id_hex(32)),
                ical_uid: format!("040000008200E00074C5B7101A82E008{}", g.id_hex(32)),
                subject: if recurring {
                    "Weekly sync".into()
                } else {
                    format!("Meeting: {}", g.words(3))
                },
                transaction_id: None,
                body_html: format!("<p>{}</p>", g.words(20)),
                start,
                end: start + Duration::minutes(30 + 30 * i64::from(n % 3)),
                location: format!("Room {}", 100 + n),
                organizer: (user.display_name.clone(), upn.clone()),
                attendees: vec![(
                    format!(
                        "{} {}",
                        people[(i + 1) % people.len()].0,
                        people[(i + 1) % people.len()].1
                    ),
                    people[(i + 1) % people.len()].2.clone(),
                )],
                weekly_occurrences: recurring.then_some(6),
                exceptions,
                created: base_time(),
                modified: base_time(),
                change_key: g.id_hex(20),
            };
            let seq = world.next_seq();
            user.calendar_log.upsert(seq, &event.id);
            user.events.insert(event.id.clone(), event);
        }
        onedrive(world, g, spec, &mut user, i == 0);
        tenant.users.insert(id, user);
    }
    // A licensed user without a mailbox: mail endpoints fail for it.
    let id = g.guid();
    let drive_id = format!("b!{}", g.id_hex(40));
    let root_id = format!("01ROOT{}", g.id_hex(26).to_uppercase());
    let mut drive = Drive {
        id: drive_id,
        root_id: root_id.clone(),
        ..Drive::default()
    };
    drive.items.insert(
        root_id.clone(),
        DriveItem {
            id: root_id.clone(),
            name: "root".into(),
            parent_id: String::new(),
            folder: true,
            content: Content::stored(Vec::new()),
            created: base_time(),
            modified: base_time(),
            etag_version: 1,
            ctag_version: 1,
            deleted: false,
        },
    );
    let seq = world.next_seq();
    drive.log.upsert(seq, &root_id);
    tenant.users.insert(
        id.clone(),
        M365User {
            id,
            upn: format!("room.{}@{domain}", spec.name),
            display_name: "Conference Room".into(),
            has_mailbox: false,
            folders: BTreeMap::new(),
            folder_log: ChangeLog::default(),
            messages: BTreeMap::new(),
            events: BTreeMap::new(),
            calendar_log: ChangeLog::default(),
            drive,
        },
    );
    tenant
}

fn mail_folders(user: &mut M365User, g: &mut Gen, seq: u64) {
    let mut add =
        |user: &mut M365User, name: &str, parent: &str, well_known: Option<&'static str>| {
            let id = format!("AAMkAF{}=", g.id_hex(32));
            user.folders.insert(
                id.clone(),
                MailFolder {
                    id: id.clone(),
                    display_name: name.into(),
                    parent_id: parent.into(),
                    well_known,
                    log: ChangeLog::default(),
                },
            );
            user.folder_log.upsert(seq, &id);
            id
        };
    let root = add(user, "Top of Information Store", "", Some("msgfolderroot"));
    let inbox = add(user, "Inbox", &root, Some("inbox"));
    let projects = add(user, "Projects", &inbox, None);
    add(user, "2026", &projects, None);
    add(user, "Sent Items", &root, Some("sentitems"));
    add(user, "Deleted Items", &root, Some("deleteditems"));
    add(user, "Drafts", &root, Some("drafts"));
    add(user, "Archive", &root, Some("archive"));
    add(user, "Junk Email", &root, Some("junkemail"));
}

#[allow(clippy::too_many_arguments)]
fn m365_message(
    g: &mut Gen,
    folder_id: String,
    from: (String, String),
    to: Vec<(String, String)>,
    date: DateTime<Utc>,
    body_len: u64,
    attachment: Option<Attachment>,
    subject: Option<String>,
) -> Message {
    let subject = subject.unwrap_or_else(|| {
        let w = g.words(4);
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    });
    let host = from.1.split('@').nth(1).unwrap_or("example.com").to_owned();
    let message_id = format!("<{}@{host}>", g.id_hex(24));
    let body = g.body(body_len);
    let preview: String = body.chars().take(255).collect();
    let has_attachments = attachment.is_some();
    let spec = MailSpec::new(
        message_id.clone(),
        from.clone(),
        to.clone(),
        subject.clone(),
        date,
        body,
        attachment,
    );
    Message {
        id: format!("AAMkAD{}=", g.id_hex(40)),
        folder_id,
        internet_message_id: message_id,
        subject,
        from,
        to,
        received: date + Duration::seconds(2),
        sent: date,
        created: date,
        modified: date,
        is_read: g.rng.gen_bool(0.6),
        is_draft: false,
        categories: vec![],
        has_attachments,
        change_key: g.id_hex(20),
        body_preview: preview,
        mime: Content::Mail(Arc::new(spec)),
    }
}

fn onedrive(world: &mut World, g: &mut Gen, spec: &DatasetSpec, user: &mut M365User, first: bool) {
    let drive_id = format!("b!{}", g.id_hex(40));
    let root_id = format!("01ROOT{}", g.id_hex(26).to_uppercase());
    let mut drive = Drive {
        id: drive_id,
        root_id: root_id.clone(),
        ..Drive::default()
    };
    drive.items.insert(
        root_id.clone(),
        DriveItem {
            id: root_id.clone(),
            name: "root".into(),
            parent_id: String::new(),
            folder: true,
            content: Content::stored(Vec::new()),
            created: base_time(),
            modified: base_time(),
            etag_version: 1,
            ctag_version: 1,
            deleted: false,
        },
    );
    drive.log.upsert(world.next_seq(), &root_id);
    let mut add = |drive: &mut Drive,
                   g: &mut Gen,
                   name: String,
                   parent: &str,
                   folder: bool,
                   content: Content| {
        let id = format!("01SIM{}", g.id_hex(27).to_uppercase());
        let seq = world.next_seq();
        drive.items.insert(
            id.clone(),
            DriveItem {
                id: id.clone(),
                name,
                parent_id: parent.to_owned(),
                folder,
                content,
                created: base_time(),
                modified: base_time(),
                etag_version: 1,
                ctag_version: 1,
                deleted: false,
            },
        );
        drive.log.upsert(seq, &id);
        id
    };
    let documents = add(
        &mut drive,
        g,
        "Documents".into(),
        &root_id,
        true,
        Content::stored(Vec::new()),
    );
    let reports = add(
        &mut drive,
        g,
        "Reports".into(),
        &documents,
        true,
        Content::stored(Vec::new()),
    );
    let parents = [root_id.clone(), documents, reports];
    let extensions = ["pdf", "docx", "xlsx", "txt", "png", "zip"];
    for n in 0..spec.files_per_user {
        // The first file is empty: every dataset has a zero-byte file.
        let len = if n == 0 { 0 } else { g.size(spec.file_bytes) };
        let name = format!(
            "{}.{}",
            g.words(2).replace(' ', "-"),
            extensions[n as usize % extensions.len()]
        );
        let content = Content::Random {
            seed: g.content_seed(),
            len,
        };
        add(
            &mut drive,
            g,
            name,
            &parents[n as usize % parents.len()],
            false,
            content,
        );
    }
    if first {
        if let Some(len) = spec.big_file {
            let content = Content::Random {
                seed: g.content_seed(),
                len,
            };
            add(
                &mut drive,
                g,
                "Video recording.mp4".into(),
                &root_id,
                false,
                content,
            );
        }
    }
    user.drive = drive;
}

// ------------------------------------------------------------------- Google

/// RSA keys are slow to generate: one per seed, for the process.
fn service_account_key(seed: u64) -> (String, String) {
    static KEYS: OnceLock<Mutex<BTreeMap<u64, (String, String)>>> = OnceLock::new();
    let keys = KEYS.get_or_init(Default::default);
    let mut keys = keys.lock().unwrap_or_else(|p| p.into_inner());
    keys.entry(seed)
        .or_insert_with(|| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_5A5A);
            let key = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA key generation");
            let private = key
                .to_pkcs8_pem(LineEnding::LF)
                .expect("PKCS#8 PEM")
                .to_string();
            let public = key
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("public PEM");
            (private, public)
        })
        .clone()
}

pub const GOOGLE_SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/calendar",
];

fn service_account(g: &mut Gen, seed: u64) -> ServiceAccount {
    let (private_key_pem, public_key_pem) = service_account_key(seed);
    let project = format!("arkiv-sim-{}", g.id_hex(6));
    ServiceAccount {
        project_id: project.clone(),
        client_email: format!("arkiv-backup@{project}.iam.gserviceaccount.com"),
        client_id: format!(
            "1{}",
            (0..20)
                .map(|_| char::from_digit(g.rng.gen_range(0..10), 10).expect("digit"))
                .collect::<String>()
        ),
        private_key_id: g.id_hex(40),
        private_key_pem,
        public_key_pem,
    }
}

fn build_google(
    world: &mut World,
    g: &mut Gen,
    spec: &DatasetSpec,
    domain: &str,
    _seed: u64,
) -> GoogleDomain {
    let people: Vec<(String, String, String)> = (0..spec.users as usize)
        .map(|i| {
            let (first, last) = person(i + 7);
            let email = format!("{}@{domain}", login(&first, &last));
            (first, last, email)
        })
        .collect();
    let admin = people[0].2.clone();
    let mut d = GoogleDomain {
        domain: domain.to_owned(),
        customer_id: format!("C0{}", g.id_hex(7)),
        admin: admin.clone(),
        // The admin has authorised Arkiv's service account already, so the
        // demo connects from the CLI alone; tests revoke it to see refusal.
        delegations: BTreeMap::from([(
            world.service_account.client_id.clone(),
            GOOGLE_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        )]),
        users: BTreeMap::new(),
        files: BTreeMap::new(),
        shared_drives: BTreeMap::new(),
        drive_log: Vec::new(),
        drive_token_floor: 0,
    };
    let shared = spec.shared_attachment.map(|len| Content::Random {
        seed: g.content_seed(),
        len,
    });
    for (i, (first, last, email)) in people.iter().enumerate() {
        let id = format!(
            "1{}",
            (0..20)
                .map(|_| char::from_digit(g.rng.gen_range(0..10), 10).expect("digit"))
                .collect::<String>()
        );
        let mut user = GoogleUser {
            id: id.clone(),
            email: email.clone(),
            given_name: first.clone(),
            family_name: last.clone(),
            is_admin: i == 0,
            messages: BTreeMap::new(),
            labels: system_labels(),
            history: Vec::new(),
            history_floor: world.current_seq(),
            calendars: BTreeMap::new(),
        };
        user.labels.insert(
            "Label_1".into(),
            GmailLabel {
                id: "Label_1".into(),
                name: "Projects".into(),
                system: false,
            },
        );
        user.labels.insert(
            "Label_2".into(),
            GmailLabel {
                id: "Label_2".into(),
                name: "Projects/Alpha".into(),
                system: false,
            },
        );
        for n in 0..spec.messages_per_user {
            let sender = &people[(i + 1 + n as usize) % people.len()];
            let size = g.size(spec.message_bytes);
            let attachment = (n % 4 == 1).then(|| Attachment {
                name: format!("{}.pdf", g.words(2).replace(' ', "-")),
                content_type: "application/pdf".into(),
                content: Content::Random {
                    seed: g.content_seed(),
                    len: size / 2,
                },
            });
            let body_len = if attachment.is_some() { size / 2 } else { size };
            let labels: Vec<String> = match n % 5 {
                0 => vec!["INBOX".into(), "UNREAD".into(), "CATEGORY_PERSONAL".into()],
                1 => vec!["INBOX".into(), "Label_1".into()],
                2 => vec!["SENT".into()],
                3 => vec!["Label_2".into()],
                _ => vec!["INBOX".into(), "STARRED".into(), "IMPORTANT".into()],
            };
            let date = g.time(80);
            gmail_message(
                world,
                g,
                &mut user,
                (format!("{} {}", sender.0, sender.1), sender.2.clone()),
                date,
                body_len,
                attachment,
                labels,
                None,
            );
        }
        if let Some(content) = &shared {
            let sender = &people[0];
            let attachment = Attachment {
                name: "All-hands deck.pdf".into(),
                content_type: "application/pdf".into(),
                content: content.clone(),
            };
            gmail_message(
                world,
                g,
                &mut user,
                (format!("{} {}", sender.0, sender.1), sender.2.clone()),
                base_time() + Duration::days(3),
                500,
                Some(attachment),
                vec!["INBOX".into()],
                Some("All-hands deck".into()),
            );
        }
        google_calendars(world, g, spec, &mut user);
        d.users.insert(id, user);
    }
    google_drive(world, g, spec, &mut d);
    d
}

/// A user's My Drive root: a folder they own, with no parent.
pub fn my_drive_root(id: &str, owner: &str, at: DateTime<Utc>) -> DriveFile {
    DriveFile {
        id: id.to_owned(),
        name: "My Drive".into(),
        mime_type: "application/vnd.google-apps.folder".into(),
        parents: vec![],
        drive_id: None,
        owner: owner.to_owned(),
        content: Content::stored(Vec::new()),
        created: at,
        modified: at,
        version: 1,
        trashed: false,
        deleted: false,
        app_properties: BTreeMap::new(),
    }
}

pub fn system_labels() -> BTreeMap<String, GmailLabel> {
    [
        "INBOX",
        "SENT",
        "TRASH",
        "SPAM",
        "DRAFT",
        "UNREAD",
        "STARRED",
        "IMPORTANT",
        "CATEGORY_PERSONAL",
        "CATEGORY_SOCIAL",
        "CATEGORY_PROMOTIONS",
        "CATEGORY_UPDATES",
        "CATEGORY_FORUMS",
    ]
    .iter()
    .map(|l| {
        (
            (*l).to_owned(),
            GmailLabel {
                id: (*l).to_owned(),
                name: (*l).to_owned(),
                system: true,
            },
        )
    })
    .collect()
}

#[allow(clippy::too_many_arguments)]
fn gmail_message(
    world: &mut World,
    g: &mut Gen,
    user: &mut GoogleUser,
    from: (String, String),
    date: DateTime<Utc>,
    body_len: u64,
    attachment: Option<Attachment>,
    labels: Vec<String>,
    subject: Option<String>,
) {
    let subject = subject.unwrap_or_else(|| {
        let w = g.words(4);
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    });
    let host = from.1.split('@').nth(1).unwrap_or("example.com").to_owned();
    let message_id = format!("<{}@{host}>", g.id_hex(24));
    let body = g.body(body_len);
    let snippet: String = body.chars().take(200).collect();
    let to = vec![(
        format!("{} {}", user.given_name, user.family_name),
        user.email.clone(),
    )];
    let spec = MailSpec::new(message_id, from, to, subject, date, body, attachment);
    let history_id = world.next_seq();
    let id = format!("{:x}{}", date.timestamp_millis(), g.id_hex(5));
    user.messages.insert(
        id.clone(),
        GmailMessage {
            id: id.clone(),
            thread_id: id.clone(),
            label_ids: labels,
            internal_date_ms: date.timestamp_millis(),
            history_id,
            snippet,
            raw: Content::Mail(Arc::new(spec)),
        },
    );
}

fn google_calendars(world: &mut World, g: &mut Gen, spec: &DatasetSpec, user: &mut GoogleUser) {
    let mut primary = Calendar {
        id: user.email.clone(),
        summary: user.email.clone(),
        primary: true,
        time_zone: "Europe/Berlin".into(),
        events: BTreeMap::new(),
        log: ChangeLog::default(),
    };
    for n in 0..spec.events_per_user {
        let start =
            base_time() + Duration::days(i64::from(n) * 4 + 20) + Duration::hours(i64::from(n % 6));
        let recurring = n == 0;
        let id = g.id_hex(26).replace(|c: char| c > 'v', "a");
        let event = GEvent {
            id: id.clone(),
            ical_uid: format!("{id}@google.com"),
            status: "confirmed".into(),
            summary: if recurring {
                "Team standup".into()
            } else {
                format!("Meeting: {}", g.words(3))
            },
            description: g.words(15),
            start,
            end: start + Duration::minutes(30),
            all_day: false,
            recurrence: if recurring {
                vec!["RRULE:FREQ=WEEKLY;COUNT=8".into()]
            } else {
                vec![]
            },
            recurring_event_id: None,
            original_start: None,
            organizer: user.email.clone(),
            attendees: vec![],
            created: base_time(),
            updated: base_time(),
            sequence: 0,
            event_type: "default".into(),
        };
        let seq = world.next_seq();
        primary.log.upsert(seq, &id);
        if recurring && spec.events_per_user > 1 {
            // An exception (moved) and a cancelled instance of the series.
            for (week, cancelled) in [(2i64, false), (3, true)] {
                let original = start + Duration::weeks(week);
                let exception_id = format!("{id}_{}", original.format("%Y%m%dT%H%M%SZ"));
                let mut exception = event.clone();
                exception.id = exception_id.clone();
                exception.recurrence = vec![];
                exception.recurring_event_id = Some(id.clone());
                exception.original_start = Some(original);
                exception.start = original + Duration::hours(1);
                exception.end = exception.start + Duration::minutes(30);
                if cancelled {
                    exception.status = "cancelled".into();
                }
                let seq = world.next_seq();
                primary.log.upsert(seq, &exception_id);
                primary.events.insert(exception_id, exception);
            }
        }
        primary.events.insert(id, event);
    }
    let mut team = Calendar {
        id: format!("c_{}@group.calendar.google.com", g.id_hex(24)),
        summary: "Team events".into(),
        primary: false,
        time_zone: "Europe/Berlin".into(),
        events: BTreeMap::new(),
        log: ChangeLog::default(),
    };
    let id = g.id_hex(26).replace(|c: char| c > 'v', "b");
    let start = base_time() + Duration::days(45);
    let offsite = GEvent {
        id: id.clone(),
        ical_uid: format!("{id}@google.com"),
        status: "confirmed".into(),
        summary: "Team offsite".into(),
        description: "Two days out of the office.".into(),
        start,
        end: start + Duration::days(2),
        all_day: true,
        recurrence: vec![],
        recurring_event_id: None,
        original_start: None,
        organizer: user.email.clone(),
        attendees: vec![],
        created: base_time(),
        updated: base_time(),
        sequence: 0,
        event_type: "default".into(),
    };
    let seq = world.next_seq();
    team.log.upsert(seq, &id);
    team.events.insert(id, offsite);
    user.calendars.insert(primary.id.clone(), primary);
    user.calendars.insert(team.id.clone(), team);
}

pub fn new_drive_id(g: &mut impl Rng, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..len)
        .map(|_| ALPHABET[g.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn google_drive(world: &mut World, g: &mut Gen, spec: &DatasetSpec, d: &mut GoogleDomain) {
    let users: Vec<(String, String)> = d
        .users
        .values()
        .map(|u| (u.id.clone(), u.email.clone()))
        .collect();
    let mut add = |d: &mut GoogleDomain,
                   g: &mut Gen,
                   name: String,
                   mime: &str,
                   parent: &str,
                   drive_id: Option<String>,
                   owner: &str,
                   content: Content| {
        let id = format!("1{}", new_drive_id(&mut g.rng, 32));
        let seq = world.next_seq();
        let scope = match &drive_id {
            Some(drive) => DriveScope::Shared {
                drive_id: drive.clone(),
            },
            None => DriveScope::MyDrive {
                owner: owner.to_owned(),
            },
        };
        d.files.insert(
            id.clone(),
            DriveFile {
                id: id.clone(),
                name,
                mime_type: mime.to_owned(),
                parents: vec![parent.to_owned()],
                drive_id,
                owner: owner.to_owned(),
                content,
                created: base_time(),
                modified: base_time(),
                version: 1,
                trashed: false,
                deleted: false,
                app_properties: BTreeMap::new(),
            },
        );
        d.drive_log.push((seq, id.clone(), scope));
        id
    };
    let binaries = [
        ("pdf", "application/pdf"),
        ("png", "image/png"),
        ("txt", "text/plain"),
        ("zip", "application/zip"),
    ];
    let docs = [
        ("application/vnd.google-apps.document", "Meeting notes"),
        ("application/vnd.google-apps.spreadsheet", "Budget"),
        ("application/vnd.google-apps.presentation", "Pitch deck"),
        ("application/vnd.google-apps.drawing", "Org chart"),
    ];
    for (i, (user_id, email)) in users.iter().enumerate() {
        let root = format!("0A{}", new_drive_id(&mut g.rng, 17));
        d.files
            .insert(root.clone(), my_drive_root(&root, email, base_time()));
        let folder = add(
            d,
            g,
            "Projects".into(),
            "application/vnd.google-apps.folder",
            &root,
            None,
            email,
            Content::stored(Vec::new()),
        );
        for n in 0..spec.files_per_user {
            let len = if n == 0 { 0 } else { g.size(spec.file_bytes) };
            let (ext, mime) = binaries[n as usize % binaries.len()];
            let parent = if n % 2 == 0 { &root } else { &folder };
            let seed = g.content_seed();
            let name = format!("{}.{ext}", g.words(2).replace(' ', "-"));
            add(
                d,
                g,
                name,
                mime,
                parent,
                None,
                email,
                Content::Random { seed, len },
            );
        }
        if spec.google_docs {
            for (mime, title) in docs {
                let seed = g.content_seed();
                let len = g.size((5_000, 60_000));
                add(
                    d,
                    g,
                    title.to_owned(),
                    mime,
                    &folder,
                    None,
                    email,
                    Content::Random { seed, len },
                );
            }
            if i == 0 {
                // A document whose export exceeds Drive's 10 MB export limit.
                let seed = g.content_seed();
                add(
                    d,
                    g,
                    "Annual report (huge)".into(),
                    "application/vnd.google-apps.document",
                    &root,
                    None,
                    email,
                    Content::Random {
                        seed,
                        len: 11 * 1024 * 1024,
                    },
                );
            }
        }
        if i == 0 {
            if let Some(len) = spec.big_file {
                let seed = g.content_seed();
                add(
                    d,
                    g,
                    "Video recording.mp4".into(),
                    "video/mp4",
                    &root,
                    None,
                    email,
                    Content::Random { seed, len },
                );
            }
        }
        let _ = user_id;
    }
    // One shared drive every user belongs to.
    let drive_id = format!("0A{}", new_drive_id(&mut g.rng, 17));
    d.shared_drives.insert(
        drive_id.clone(),
        SharedDrive {
            id: drive_id.clone(),
            name: "Team Drive".into(),
            root_id: drive_id.clone(),
            members: users
                .iter()
                .map(|(_, e)| e.clone())
                .collect::<BTreeSet<_>>(),
        },
    );
    let owner = users[0].1.clone();
    for n in 0..3u64 {
        let seed = g.content_seed();
        let len = g.size((1_000, 300_000));
        add(
            d,
            g,
            format!("Team handbook part {}.pdf", n + 1),
            "application/pdf",
            &drive_id,
            Some(drive_id.clone()),
            &owner,
            Content::Random { seed, len },
        );
    }
    if spec.google_docs {
        let seed = g.content_seed();
        add(
            d,
            g,
            "Team plan".into(),
            "application/vnd.google-apps.document",
            &drive_id,
            Some(drive_id.clone()),
            &owner,
            Content::Random { seed, len: 20_000 },
        );
    }
    d.drive_token_floor = 0;
}

/// A new, empty Microsoft 365 user (for `/_sim/m365/users`): standard
/// folders, an empty drive.
pub fn new_m365_user(seq: u64, upn: &str, display_name: &str) -> M365User {
    let mut g = Gen::new(rand::random(), 9);
    let mut user = M365User {
        id: g.guid(),
        upn: upn.to_owned(),
        display_name: display_name.to_owned(),
        has_mailbox: true,
        folders: BTreeMap::new(),
        folder_log: ChangeLog::default(),
        messages: BTreeMap::new(),
        events: BTreeMap::new(),
        calendar_log: ChangeLog::default(),
        drive: Drive::default(),
    };
    mail_folders(&mut user, &mut g, seq);
    let root_id = format!("01ROOT{}", g.id_hex(26).to_uppercase());
    let mut drive = Drive {
        id: format!("b!{}", g.id_hex(40)),
        root_id: root_id.clone(),
        ..Drive::default()
    };
    let now = Utc::now();
    drive.items.insert(
        root_id.clone(),
        DriveItem {
            id: root_id.clone(),
            name: "root".into(),
            parent_id: String::new(),
            folder: true,
            content: Content::stored(Vec::new()),
            created: now,
            modified: now,
            etag_version: 1,
            ctag_version: 1,
            deleted: false,
        },
    );
    drive.log.upsert(seq, &root_id);
    user.drive = drive;
    user
}

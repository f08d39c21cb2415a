//! The demo data of API.md §6. Kept out of the migrations: no credentials in schema files.
use super::users::{self, NewUser};
use crate::crypto::hash_password;
use crate::error::StoreError;
use rusqlite::{params, Connection};

pub const DEMO_SEATS: i64 = 2;

/// (nickname, secret, api user, scopes)
pub const DEMO_USERS: &[(&str, &str, bool, &[&str])] = &[
    ("demo", "demo-secret", true, &["view", "all"]),
    ("viewer", "viewer-secret", true, &["view"]),
    ("alice", "alice-secret", false, &["view"]),
];

const PRODUCTS: &[(&str, &str, &str, i64, i64)] = &[
    (
        "BOLT-M6-20",
        "Hex bolt M6 x 20",
        "Zinc-plated steel, DIN 933",
        12,
        5000,
    ),
    (
        "BOLT-M8-30",
        "Hex bolt M8 x 30",
        "Zinc-plated steel, DIN 933",
        21,
        3200,
    ),
    (
        "BOLT-M10-40",
        "Hex bolt M10 x 40",
        "Zinc-plated steel, DIN 933",
        38,
        1800,
    ),
    (
        "NUT-M6",
        "Hex nut M6",
        "Zinc-plated steel, DIN 934",
        4,
        9000,
    ),
    (
        "NUT-M8",
        "Hex nut M8",
        "Zinc-plated steel, DIN 934",
        6,
        7500,
    ),
    (
        "NUT-M10",
        "Hex nut M10",
        "Zinc-plated steel, DIN 934",
        9,
        4000,
    ),
    ("WASHER-M6", "Flat washer M6", "DIN 125", 2, 12000),
    ("WASHER-M8", "Flat washer M8", "DIN 125", 3, 10000),
    (
        "SCREW-WD-4x40",
        "Wood screw 4 x 40",
        "Countersunk, Torx 20",
        5,
        6000,
    ),
    (
        "SCREW-WD-5x60",
        "Wood screw 5 x 60",
        "Countersunk, Torx 25",
        8,
        4200,
    ),
    (
        "ANCHOR-8",
        "Wall anchor 8 mm",
        "Nylon, for concrete and brick",
        7,
        3000,
    ),
    (
        "ANCHOR-10",
        "Wall anchor 10 mm",
        "Nylon, for concrete and brick",
        11,
        2100,
    ),
    (
        "DRILL-HSS-6",
        "HSS drill bit 6 mm",
        "Ground, for steel",
        349,
        140,
    ),
    (
        "DRILL-HSS-8",
        "HSS drill bit 8 mm",
        "Ground, for steel",
        449,
        95,
    ),
    (
        "DRILL-SDS-10",
        "SDS-plus masonry bit 10 mm",
        "Carbide tip",
        799,
        60,
    ),
    (
        "BLADE-JIG-T101",
        "Jigsaw blade T101B (5 pack)",
        "Clean cut in wood",
        599,
        75,
    ),
    (
        "SAND-P80",
        "Sanding sheet P80 (10 pack)",
        "Aluminium oxide",
        449,
        120,
    ),
    (
        "SAND-P120",
        "Sanding sheet P120 (10 pack)",
        "Aluminium oxide",
        449,
        130,
    ),
    (
        "SAND-P240",
        "Sanding sheet P240 (10 pack)",
        "Aluminium oxide",
        449,
        8,
    ),
    ("TAPE-MASK-25", "Masking tape 25 mm", "50 m roll", 299, 300),
    (
        "TAPE-DUCT-50",
        "Duct tape 50 mm",
        "Silver, 25 m roll",
        699,
        4,
    ),
    (
        "GLOVE-NIT-L",
        "Nitrile gloves L (100)",
        "Powder-free",
        1299,
        40,
    ),
    (
        "GLOVE-NIT-M",
        "Nitrile gloves M (100)",
        "Powder-free",
        1299,
        3,
    ),
    (
        "GOGGLE-CLR",
        "Safety goggles",
        "Clear, anti-fog, EN 166",
        899,
        55,
    ),
    (
        "EARPLUG-200",
        "Foam ear plugs (200 pairs)",
        "SNR 37 dB",
        2499,
        12,
    ),
    (
        "CABLE-TIE-200",
        "Cable ties 200 mm (100)",
        "Black, UV resistant",
        349,
        400,
    ),
    (
        "CABLE-TIE-300",
        "Cable ties 300 mm (100)",
        "Black, UV resistant",
        499,
        250,
    ),
    (
        "HINGE-BUTT-75",
        "Butt hinge 75 mm",
        "Brushed stainless steel",
        449,
        160,
    ),
    ("HINGE-PIANO-1M", "Piano hinge 1 m", "Aluminium", 1599, 2),
    ("LOCK-PAD-40", "Padlock 40 mm", "Brass, two keys", 1199, 45),
    (
        "CHAIN-6MM-1M",
        "Steel chain 6 mm, per metre",
        "Galvanised",
        549,
        900,
    ),
    (
        "ROPE-PP-10",
        "Polypropylene rope 10 mm, per metre",
        "Blue",
        129,
        1500,
    ),
    (
        "GLUE-PVA-500",
        "PVA wood glue 500 ml",
        "D3 water resistant",
        899,
        70,
    ),
    (
        "GLUE-EPOXY-25",
        "Two-part epoxy 25 ml",
        "5-minute set",
        749,
        6,
    ),
    (
        "SILICONE-CLR",
        "Silicone sealant, clear",
        "310 ml cartridge",
        649,
        88,
    ),
    (
        "WD-LUBE-400",
        "Penetrating lubricant 400 ml",
        "Aerosol",
        799,
        0,
    ),
];

/// Two GetData examples (API.md §7): (name, sql, description).
pub const DEMO_QUERIES: &[(&str, &str, &str)] = &[
    (
        "low-stock",
        "SELECT sku, name, stock FROM products WHERE stock < ?1 ORDER BY stock, sku",
        "Products with fewer than qp1 in stock",
    ),
    (
        "products-by-prefix",
        "SELECT sku, name, price_cents FROM products WHERE name LIKE ?1 || '%' ORDER BY name, sku",
        "Products whose name starts with qp1 (case-insensitive)",
    ),
];

/// Adds the demo users, seats, products and queries to a migrated, empty database.
pub fn seed(c: &mut Connection, iterations: u32, now: i64) -> Result<(), StoreError> {
    let tx = c.transaction()?;
    for (name, secret, api_user, scopes) in DEMO_USERS {
        let hash = hash_password(secret, iterations);
        users::create(
            &tx,
            &NewUser {
                nickname: name,
                password_hash: &hash,
                api_user: *api_user,
                scopes,
            },
            now,
        )?;
    }
    super::sessions::set_seats(&tx, DEMO_SEATS)?;
    for (sku, name, desc, price, stock) in PRODUCTS {
        tx.execute(
            "INSERT INTO products (sku, name, description, price_cents, stock, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![sku, name, desc, price, stock, now],
        )?;
    }
    for (name, sql, description) in DEMO_QUERIES {
        let q = super::queries::SavedQuery {
            name: (*name).into(),
            sql: (*sql).into(),
            scope: "view".into(),
            description: (*description).into(),
        };
        super::queries::insert(&tx, &q, now)?;
    }
    tx.commit()?;
    Ok(())
}

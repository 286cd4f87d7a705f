//! Small fixed word lists for fictional people, streets and organisations, matching the mix of
//! Pico-Union / Westlake (mostly Latino, with Korean, Filipino and other neighbours). ASCII only,
//! so that emails can be derived from names.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

const HISPANIC_FIRST: [&str; 40] = [
    "Maria",
    "Jose",
    "Juan",
    "Guadalupe",
    "Carlos",
    "Ana",
    "Luis",
    "Rosa",
    "Miguel",
    "Sofia",
    "Alejandro",
    "Veronica",
    "Jesus",
    "Carmen",
    "Francisco",
    "Patricia",
    "Jorge",
    "Leticia",
    "Ricardo",
    "Marisol",
    "Eduardo",
    "Yesenia",
    "Fernando",
    "Gabriela",
    "Oscar",
    "Silvia",
    "Javier",
    "Adriana",
    "Mario",
    "Claudia",
    "Hector",
    "Brenda",
    "Santiago",
    "Valeria",
    "Mateo",
    "Camila",
    "Diego",
    "Ximena",
    "Angel",
    "Daniela",
];
const HISPANIC_LAST: [&str; 32] = [
    "Garcia",
    "Hernandez",
    "Lopez",
    "Martinez",
    "Rodriguez",
    "Gonzalez",
    "Perez",
    "Sanchez",
    "Ramirez",
    "Flores",
    "Cruz",
    "Reyes",
    "Morales",
    "Gomez",
    "Diaz",
    "Torres",
    "Vasquez",
    "Castillo",
    "Jimenez",
    "Ruiz",
    "Alvarez",
    "Mendoza",
    "Chavez",
    "Romero",
    "Herrera",
    "Aguilar",
    "Ortiz",
    "Juarez",
    "Escobar",
    "Menjivar",
    "Orellana",
    "Portillo",
];
const KOREAN_FIRST: [&str; 16] = [
    "Ji-woo",
    "Min-jun",
    "Seo-yeon",
    "Hyun",
    "Soo-jin",
    "Jae",
    "Eun-ji",
    "Dong-hyun",
    "Ha-eun",
    "Sung",
    "Yuna",
    "Joon",
    "Mi-rae",
    "Young",
    "Daniel",
    "Grace",
];
const KOREAN_LAST: [&str; 10] = ["Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Jang", "Lim"];
const FILIPINO_FIRST: [&str; 16] = [
    "Maricel", "Rodel", "Jocelyn", "Arnel", "Lorna", "Rowena", "Jun", "Marites", "Ramon", "Liza", "Erwin", "Cristina",
    "Noel", "Rosalie", "Paolo", "Angelica",
];
const FILIPINO_LAST: [&str; 12] = [
    "Santos",
    "Reyes",
    "dela Cruz",
    "Bautista",
    "Villanueva",
    "Ocampo",
    "Castro",
    "Mercado",
    "Aquino",
    "Manalo",
    "Soriano",
    "Pascual",
];
const ANGLO_FIRST: [&str; 16] = [
    "James", "Emily", "Michael", "Sarah", "David", "Jessica", "Robert", "Ashley", "John", "Jennifer", "Kevin",
    "Amanda", "Tyrone", "Keisha", "Andre", "Monique",
];
const ANGLO_LAST: [&str; 14] = [
    "Smith",
    "Johnson",
    "Brown",
    "Williams",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Jackson",
    "Washington",
    "Harris",
];

/// A fictional person's first and last name.
pub(super) fn person(rng: &mut ChaCha8Rng) -> (&'static str, &'static str) {
    let roll: f64 = rng.random();
    let (first, last): (&[&str], &[&str]) = if roll < 0.70 {
        (&HISPANIC_FIRST, &HISPANIC_LAST)
    } else if roll < 0.80 {
        (&KOREAN_FIRST, &KOREAN_LAST)
    } else if roll < 0.90 {
        (&FILIPINO_FIRST, &FILIPINO_LAST)
    } else {
        (&ANGLO_FIRST, &ANGLO_LAST)
    };
    (pick(first, rng), pick(last, rng))
}

/// `first.last.n@example.org`, lowercase letters and digits only.
pub(super) fn email(first: &str, last: &str, n: usize) -> String {
    let clean =
        |s: &str| s.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect::<String>();
    format!("{}.{}.{n}@example.org", clean(first), clean(last))
}

/// A phone number in the range reserved for fiction, `(213) 555-01NN`.
pub(super) fn phone(nn: u8) -> String {
    format!("(213) 555-01{:02}", nn % 100)
}

pub(super) fn pick<'a>(list: &[&'a str], rng: &mut ChaCha8Rng) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// East-west streets, south to north around Pico-Union; index 6 runs just south of the
/// headquarters (1910 Magnolia Ave lies between Washington Blvd and 18th St).
const EAST_WEST: [&str; 25] = [
    "W Adams Blvd",
    "W 27th St",
    "W 25th St",
    "W 23rd St",
    "W 21st St",
    "W 20th St",
    "W Washington Blvd",
    "W 18th St",
    "W 17th St",
    "W 16th St",
    "W Venice Blvd",
    "W 15th St",
    "W 14th St",
    "W Pico Blvd",
    "W 12th St",
    "W 11th St",
    "W Olympic Blvd",
    "W 9th St",
    "James M Wood Blvd",
    "W 8th St",
    "W 7th St",
    "Wilshire Blvd",
    "W 6th St",
    "W 4th St",
    "W 3rd St",
];
/// Index of the street just south of the headquarters in [`EAST_WEST`].
const EAST_WEST_HQ: usize = 6;

/// Further north than [`EAST_WEST`] reaches (repeating for county-sized grids).
const NORTH_MORE: [&str; 12] = [
    "W 2nd St",
    "W 1st St",
    "Beverly Blvd",
    "W Council St",
    "W Temple St",
    "Oakwood Ave",
    "Rosewood Ave",
    "Melrose Ave",
    "Waring Ave",
    "Willoughby Ave",
    "Santa Monica Blvd",
    "Lexington Ave",
];

/// Further west and east than [`NORTH_SOUTH`] reaches (repeating for county-sized grids).
const WEST_MORE: [&str; 10] = [
    "S Kenmore Ave",
    "S Ardmore Ave",
    "S Harvard Blvd",
    "S Hobart Blvd",
    "S Serrano Ave",
    "S Oxford Ave",
    "S Western Ave",
    "S St Andrews Pl",
    "S Gramercy Pl",
    "S Wilton Pl",
];
const EAST_MORE: [&str; 10] = [
    "S Figueroa St",
    "S Flower St",
    "S Hope St",
    "S Grand Ave",
    "S Olive St",
    "S Hill St",
    "S Broadway",
    "S Main St",
    "S Los Angeles St",
    "S Maple Ave",
];

/// The east-west street on grid line `k` lines north of the one just south of the
/// headquarters (negative: south). South of Adams Blvd the numbered streets continue.
pub(super) fn east_west(k: i64) -> String {
    let at = k + EAST_WEST_HQ as i64;
    if at < 0 {
        // Adams Blvd sits where 26th St would be.
        ordinal_street(26 - at)
    } else if let Some(name) = EAST_WEST.get(at as usize) {
        (*name).to_string()
    } else {
        NORTH_MORE[(at as usize - EAST_WEST.len()) % NORTH_MORE.len()].to_string()
    }
}

/// The north-south street on grid line `k` lines east of Magnolia Ave (negative: west).
pub(super) fn north_south(k: i64) -> &'static str {
    let at = k + NORTH_SOUTH_HQ as i64;
    if at < 0 {
        WEST_MORE[((-at - 1) as usize) % WEST_MORE.len()]
    } else if let Some(name) = NORTH_SOUTH.get(at as usize) {
        name
    } else {
        EAST_MORE[(at as usize - NORTH_SOUTH.len()) % EAST_MORE.len()]
    }
}

fn ordinal_street(n: i64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("W {n}{suffix} St")
}

/// North-south streets, west to east; index 8 is Magnolia Ave.
const NORTH_SOUTH: [&str; 20] = [
    "S Normandie Ave",
    "S Mariposa Ave",
    "S Berendo St",
    "S New Hampshire Ave",
    "S Catalina St",
    "S Vermont Ave",
    "S Menlo Ave",
    "Ellendale Pl",
    "Magnolia Ave",
    "S Hoover St",
    "Toberman St",
    "S Union Ave",
    "S Burlington Ave",
    "S Valencia St",
    "S Bonnie Brae St",
    "S Alvarado St",
    "S Lake St",
    "Albany St",
    "S Bixel St",
    "Georgia St",
];
/// Index of Magnolia Ave in [`NORTH_SOUTH`].
const NORTH_SOUTH_HQ: usize = 8;

/// Short place words for organisation names.
pub(super) const PLACES: [&str; 16] = [
    "Pico-Union",
    "Westlake",
    "MacArthur Park",
    "Koreatown",
    "Harvard Heights",
    "Byzantine-Latino Quarter",
    "Alvarado",
    "Magnolia",
    "Hoover",
    "Union Avenue",
    "University Park",
    "Adams-Normandie",
    "Vermont Square",
    "Olympic",
    "Venice Boulevard",
    "Pico Boulevard",
];

/// What partner organisations call themselves.
pub(super) const PARTNER_KINDS: [&str; 22] = [
    "Youth Alliance",
    "Family Resource Center",
    "Parents Network",
    "Tenants Union",
    "Community Coalition",
    "Arts Collective",
    "Immigrant Services",
    "Promotoras Network",
    "Early Learning Partnership",
    "Neighborhood Council",
    "Legal Aid Project",
    "Literacy Project",
    "Soccer League",
    "Faith Network",
    "Business Association",
    "Housing Collaborative",
    "Mentoring Program",
    "Senior Center",
    "Family Services",
    "Community Garden",
    "Boys & Girls Club",
    "Workforce Center",
];

/// Street words used in school, park and library names.
pub(super) const NAME_STREETS: [&str; 18] = [
    "Magnolia",
    "Hoover",
    "Union",
    "Burlington",
    "Alvarado",
    "Berendo",
    "Menlo",
    "Vermont",
    "Normandie",
    "Olympic",
    "Venice",
    "Toberman",
    "Pico",
    "Valencia",
    "Bonnie Brae",
    "Catalina",
    "Washington",
    "Ellendale",
];

/// People school and park names honour.
pub(super) const HONOREES: [&str; 12] = [
    "Cesar Chavez",
    "Dolores Huerta",
    "Sal Castro",
    "Gabriela Mistral",
    "Sonia Sotomayor",
    "Larry Itliong",
    "Dosan Ahn Chang Ho",
    "Mary McLeod Bethune",
    "Oscar Romero",
    "Frida Kahlo",
    "Ruben Salazar",
    "Biddy Mason",
];

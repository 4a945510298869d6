"""People for the synthetic sample: pupils, contacts, portal accounts, staff, classes.

Used by :mod:`pipelines.sample`; see its docstring for what each size contains. Every
builder takes a ``numpy.random.Generator`` and draws from it in a fixed order, so the
same seed gives the same people. Names, streets and towns come from the small lists
below (no external data); phone numbers only from ranges kept for drama and examples
(mobiles ``07400 1xxxxx``, landlines from Ofcom's drama ranges such as ``020 7946 0xxx``); e-mail addresses only at
``example.com``, ``example.org`` and ``example.net``.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass

import numpy as np

# Ofcom's fixed-line numbers reserved for drama: valid to libphonenumber, never assigned.
DRAMA_LANDLINES = [
    "020 7946 0",
    "0113 496 0",
    "0114 496 0",
    "0116 496 0",
    "0117 496 0",
    "0118 496 0",
    "0121 496 0",
    "0131 496 0",
    "0141 496 0",
    "0151 496 0",
    "0161 496 0",
]

Cols = dict[str, np.ndarray]

# --------------------------------------------------------------------------- names
FEMALE = np.array(
    [
        "Olivia",
        "Amelia",
        "Isla",
        "Ava",
        "Mia",
        "Ivy",
        "Lily",
        "Isabella",
        "Sophia",
        "Grace",
        "Freya",
        "Florence",
        "Evie",
        "Poppy",
        "Ella",
        "Willow",
        "Emily",
        "Aisha",
        "Zara",
        "Maryam",
        "Hannah",
        "Chloe",
        "Zoë",
        "Siobhán",
        "Aoife",
        "Priya",
        "Amira",
        "Jessica",
        "Ruby",
        "Sophie",
        "Niamh",
        "Lucy",
        "Chantelle",
        "Fatima",
        "Maja",
        "Ellie",
        "Harriet",
        "Imogen",
        "Megan",
        "Nia",
        "Rebecca",
        "Sarah",
        "Claire",
        "Joanne",
        "Nadia",
        "Agnieszka",
    ],
    dtype=object,
)
MALE = np.array(
    [
        "Oliver",
        "George",
        "Noah",
        "Arthur",
        "Muhammad",
        "Leo",
        "Harry",
        "Oscar",
        "Archie",
        "Henry",
        "Theodore",
        "Jack",
        "Charlie",
        "Freddie",
        "Alfie",
        "Thomas",
        "Jacob",
        "William",
        "James",
        "Joshua",
        "Mohammed",
        "Ibrahim",
        "Yusuf",
        "Kai",
        "Dylan",
        "Ethan",
        "Rhys",
        "Callum",
        "Samuel",
        "Daniel",
        "Alexander",
        "Benjamin",
        "Jayden",
        "Kacper",
        "Tomasz",
        "Sean",
        "Ciarán",
        "Ravi",
        "Arjun",
        "Dominic",
        "Paul",
        "Mark",
        "Andrew",
        "Gareth",
        "Imran",
    ],
    dtype=object,
)
SURNAMES = np.array(
    [
        "Smith",
        "Jones",
        "Williams",
        "Brown",
        "Taylor",
        "Davies",
        "Evans",
        "Wilson",
        "Thomas",
        "Roberts",
        "Johnson",
        "Lewis",
        "Walker",
        "Robinson",
        "Wood",
        "Thompson",
        "White",
        "Watson",
        "Jackson",
        "Wright",
        "Green",
        "Harris",
        "Cooper",
        "King",
        "Lee",
        "Martin",
        "Clarke",
        "James",
        "Morgan",
        "Hughes",
        "Edwards",
        "Hill",
        "Moore",
        "Clark",
        "Harrison",
        "Scott",
        "Young",
        "Morris",
        "Hall",
        "Ward",
        "Turner",
        "Carter",
        "Phillips",
        "Mitchell",
        "Ahmed",
        "Ali",
        "Begum",
        "Hussain",
        "Khan",
        "Patel",
        "Singh",
        "Kaur",
        "Kowalski",
        "Nowak",
        "Okafor",
        "Adeyemi",
        "Mensah",
        "Nguyen",
        "Chen",
        "Murphy",
        "Kelly",
        "Byrne",
        "O'Connor",
        "O'Brien",
        "Smith-Jones",
        "Da Silva",
    ],
    dtype=object,
)
NICKNAMES = {
    "Alexander": "Alex",
    "Benjamin": "Ben",
    "Samuel": "Sam",
    "Thomas": "Tom",
    "William": "Will",
    "James": "Jamie",
    "Daniel": "Dan",
    "Joshua": "Josh",
    "Theodore": "Theo",
    "Isabella": "Bella",
    "Jessica": "Jess",
    "Harriet": "Hattie",
    "Florence": "Flo",
    "Olivia": "Liv",
    "Dominic": "Dom",
    "Rebecca": "Becky",
    "Muhammad": "Mo",
    "Mohammed": "Mo",
    "Frederick": "Fred",
    "Imogen": "Immy",
}
STREETS = np.array(
    [
        "Church",
        "Station",
        "Victoria",
        "Park",
        "Mill",
        "Albert",
        "Queens",
        "Grange",
        "Manor",
        "Chapel",
        "Meadow",
        "Orchard",
        "Beech",
        "Oak",
        "Willow",
        "Springfield",
        "Highfield",
        "Windsor",
        "Kings",
        "Elm",
        "Ash",
        "Cedar",
        "Hawthorn",
        "Clarendon",
    ],
    dtype=object,
)
STREET_KINDS = np.array(
    [
        "Road",
        "Street",
        "Avenue",
        "Close",
        "Lane",
        "Drive",
        "Grove",
        "Crescent",
        "Way",
        "Gardens",
        "Terrace",
    ],
    dtype=object,
)
DISTRICTS = np.array(
    [
        "Northside",
        "Upper Town",
        "Westfield",
        "Eastgate",
        "Southbank",
        "Hill Top",
        "Riverside",
        "Old Village",
    ],
    dtype=object,
)
# Postcode area, its post town.
AREAS = [
    ("LS", "Leeds"),
    ("M", "Manchester"),
    ("B", "Birmingham"),
    ("S", "Sheffield"),
    ("NE", "Newcastle upon Tyne"),
    ("BS", "Bristol"),
    ("NG", "Nottingham"),
    ("L", "Liverpool"),
    ("SO", "Southampton"),
    ("EX", "Exeter"),
    ("YO", "York"),
    ("HU", "Hull"),
    ("OX", "Oxford"),
    ("LE", "Leicester"),
    ("CV", "Coventry"),
    ("DE", "Derby"),
    ("BD", "Bradford"),
    ("PL", "Plymouth"),
    ("NR", "Norwich"),
    ("RG", "Reading"),
]
INWARD_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"), dtype=object)
UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
INVALID_PHONES = np.array(["0123", "07400 1234", "7400"], dtype=object)


def ascii_slug(name: str) -> str:
    """``"Siobhán O'Connor"`` → ``"siobhanoconnor"`` (for e-mail local parts)."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in text.lower() if ch.isalnum())


SLUG = np.vectorize(ascii_slug, otypes=[object])


def cat(*parts: object) -> np.ndarray:
    """Element-wise string concatenation of object arrays and plain strings."""
    out = np.asarray(parts[0], dtype=object)
    if out.ndim == 0:
        out = np.array([out.item()], dtype=object)
    for part in parts[1:]:
        out = out + (part if isinstance(part, str) else np.asarray(part, dtype=object))
    return out


def zpad(values: np.ndarray, width: int) -> np.ndarray:
    """Integers as zero-padded strings (object array)."""
    return np.array([f"{v:0{width}d}" for v in np.asarray(values).tolist()], dtype=object)


def istr(values: np.ndarray) -> np.ndarray:
    """Integers as strings (object array)."""
    return np.array([str(v) for v in np.asarray(values).tolist()], dtype=object)


def blank(n: int) -> np.ndarray:
    """n empty strings (object array)."""
    return np.full(n, "", dtype=object)


def pick(
    rng: np.random.Generator,
    values: np.ndarray | list,
    n: int,
    p: list[float] | np.ndarray | None = None,
) -> np.ndarray:
    """n values drawn with replacement (optionally weighted) as an object array."""
    values = np.asarray(values, dtype=object)
    if p is not None:
        p = np.asarray(p, dtype=float)
        p = p / p.sum()
    return values[rng.choice(len(values), size=n, p=p)]


def yn(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, "Y", "N").astype(object)


def date_strings(days: np.ndarray) -> np.ndarray:
    """datetime64[D] → ``YYYY-MM-DD`` object array."""
    return np.datetime_as_string(np.asarray(days, dtype="datetime64[D]"), unit="D").astype(object)


def timestamp_strings(seconds: np.ndarray) -> np.ndarray:
    """datetime64[s] → ``YYYY-MM-DD HH:MM:SS`` object array (fast, no per-item Python)."""
    text = np.datetime_as_string(np.asarray(seconds, dtype="datetime64[s]"), unit="s")
    codes = text.view(np.uint32).reshape(len(text), -1).copy()
    codes[:, 10] = ord(" ")
    return codes.view(f"<U{codes.shape[1]}").ravel().astype(object)


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# --------------------------------------------------------------------------- phones
class PhonePool:
    """Distinct numbers from the safe mobile range ``+44 7400 1xxxxx``.

    Numbers are unique until the 100,000 in the range are used up (only the trust gets
    that far); after that the pool is reshuffled and numbers repeat.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.pool = rng.permutation(100_000)
        self.used = 0

    def take(self, n: int) -> np.ndarray:
        """n numbers (0–99,999) from the pool, distinct within one cycle."""
        out = []
        while n > 0:
            if self.used == len(self.pool):
                self.pool = self.rng.permutation(100_000)
                self.used = 0
            k = min(n, len(self.pool) - self.used)
            out.append(self.pool[self.used : self.used + k])
            self.used += k
            n -= k
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def mobiles(self, n: int, styles: np.ndarray | None = None) -> np.ndarray:
        """n mobile numbers written in mixed, realistic formats."""
        nums = self.take(n)
        if styles is None:
            styles = self.rng.choice(5, size=n, p=[0.45, 0.2, 0.15, 0.1, 0.1])
        return format_mobiles(nums, styles)


MOBILE_FORMATS = (
    "07400 1{:05d}",
    "07400{:06d}",
    "+44 7400 1{:05d}",
    "+4474001{:05d}",
    "07400 1{}",
)


def format_mobiles(nums: np.ndarray, styles: np.ndarray) -> np.ndarray:
    """Pool numbers as written mobiles, one of five styles each."""
    out = []
    for num, style in zip(nums.tolist(), np.asarray(styles).tolist(), strict=True):
        if style == 1:
            out.append(f"07400{100000 + num:06d}")
        elif style == 4:
            digits = f"{num:05d}"
            out.append(f"07400 1{digits[:2]} {digits[2:]}")
        else:
            out.append(MOBILE_FORMATS[style].format(num))
    return np.array(out, dtype=object)


def landlines(rng: np.random.Generator, n: int) -> np.ndarray:
    areas = rng.integers(0, len(DRAMA_LANDLINES), n).tolist()
    tails = rng.integers(0, 1000, n).tolist()
    return np.array(
        [f"{DRAMA_LANDLINES[a]}{t:03d}" for a, t in zip(areas, tails, strict=True)], dtype=object
    )


# --------------------------------------------------------------------------- addresses
def addresses(rng: np.random.Generator, n: int, area: int) -> Cols:
    """UK-style addresses, ~90% in the site's postcode area."""
    home = rng.random(n) < 0.9
    area_idx = np.where(home, area, rng.integers(0, len(AREAS), n))
    codes = np.array([a[0] for a in AREAS], dtype=object)[area_idx]
    towns = np.array([a[1] for a in AREAS], dtype=object)[area_idx]
    district = istr(rng.integers(1, 29, n))
    inward = cat(
        istr(rng.integers(1, 10, n)), pick(rng, INWARD_LETTERS, n), pick(rng, INWARD_LETTERS, n)
    )
    flat = rng.random(n) < 0.08
    number = istr(rng.integers(1, 221, n))
    line1 = cat(number, " ", pick(rng, STREETS, n), " ", pick(rng, STREET_KINDS, n))
    line1 = np.where(flat, cat("Flat ", istr(rng.integers(1, 30, n)), ", ", line1), line1)
    line2 = np.where(rng.random(n) < 0.3, pick(rng, DISTRICTS, n), "").astype(object)
    return {
        "address_line1": line1,
        "address_line2": line2,
        "town": towns,
        "postcode": cat(codes, district, " ", inward),
    }


# --------------------------------------------------------------------------- data holders
@dataclass(frozen=True)
class Period:
    """A slot in the day: label (``AM``, ``1``…), kind, start and end in minutes."""

    label: str
    kind: str
    start: int
    end: int


SCHOOL_PERIODS = (
    Period("AM", "session", 8 * 60 + 40, 8 * 60 + 50),
    Period("1", "lesson", 8 * 60 + 50, 9 * 60 + 50),
    Period("2", "lesson", 9 * 60 + 50, 10 * 60 + 50),
    Period("3", "lesson", 11 * 60 + 10, 12 * 60 + 10),
    Period("4", "lesson", 12 * 60 + 10, 13 * 60 + 10),
    Period("PM", "session", 13 * 60 + 50, 14 * 60),
    Period("5", "lesson", 14 * 60, 15 * 60),
)
SCHOOL_LESSON_PERIODS = (1, 2, 3, 4, 6)  # indices into SCHOOL_PERIODS
COLLEGE_PERIODS = (
    Period("1", "lesson", 9 * 60, 10 * 60 + 15),
    Period("2", "lesson", 10 * 60 + 30, 11 * 60 + 45),
    Period("3", "lesson", 12 * 60 + 30, 13 * 60 + 45),
    Period("4", "lesson", 14 * 60, 15 * 60 + 15),
    Period("5", "lesson", 15 * 60 + 30, 16 * 60 + 45),
)


@dataclass
class Unit:
    """One school site or one college: its people, classes and weekly timetable.

    Student-level arrays are indexed by student position; ``mem_ptr``/``mem_st`` give
    each class's members (CSR, leavers included: they have marks until they leave).
    """

    kind: str  # "school" or "college"
    pfx: str
    area: int
    students: Cols
    n: int
    leave_day: np.ndarray  # last history-day index the student attended; large = still on roll
    pa: np.ndarray  # persistent-absence propensity flag
    p_absent: np.ndarray
    p_late: np.ndarray
    p_truant: np.ndarray
    ability: np.ndarray
    diligence: np.ndarray
    neg_rate: np.ndarray
    pos_rate: np.ndarray
    year_group: np.ndarray
    staff: Cols
    staff_absent_code: np.ndarray  # the code each teacher uses for "absent" in lessons
    attendance_officers: np.ndarray
    office: np.ndarray
    responsibilities: Cols
    class_id: np.ndarray
    class_subject: np.ndarray
    class_year: np.ndarray
    class_staff: np.ndarray
    class_room: np.ndarray
    class_is_reg: np.ndarray
    class_scale: np.ndarray  # grading scale name per class
    mem_ptr: np.ndarray
    mem_st: np.ndarray
    mt_class: np.ndarray  # weekly timetable: class, weekday (0=Mon), period index
    mt_weekday: np.ndarray
    mt_period: np.ndarray
    periods: tuple[Period, ...]

    @property
    def n_classes(self) -> int:
        return len(self.class_id)


# --------------------------------------------------------------------------- helpers
def names(
    rng: np.random.Generator, n: int, female: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(is_female, forename, surname) for n people."""
    if female is None:
        female = rng.random(n) < 0.5
    fore = np.where(female, pick(rng, FEMALE, n), pick(rng, MALE, n)).astype(object)
    sur = pick(rng, SURNAMES, n)
    return female, fore, sur


def titles(rng: np.random.Generator, female: np.ndarray) -> np.ndarray:
    """Titles fitting each person's recorded sex, a few Mx."""
    n = len(female)
    f = pick(rng, ["Mrs", "Ms", "Miss", "Dr"], n, [0.5, 0.3, 0.15, 0.05])
    m = pick(rng, ["Mr", "Dr"], n, [0.95, 0.05])
    out = np.where(female, f, m).astype(object)
    out[rng.random(n) < 0.01] = "Mx"
    return out


def upns(rng: np.random.Generator, n: int, birth_year: np.ndarray) -> np.ndarray:
    """Valid 13-character UPNs (LA, establishment, year allocated, serial, check letter)."""
    la = rng.choice([383, 352, 330, 373, 895, 926], size=n).astype(np.int64)
    est = rng.integers(1000, 8000, n).astype(np.int64)
    yy = ((np.asarray(birth_year) + 4) % 100).astype(np.int64)
    serial = rng.integers(0, 1000, n).astype(np.int64)
    body = la * 10**9 + est * 10**5 + yy * 10**3 + serial
    digits = np.stack([(body // 10**k) % 10 for k in range(11, -1, -1)], axis=1)
    check = (digits * np.arange(2, 14)).sum(axis=1) % 23
    letters = np.array(list(UPN_LETTERS), dtype=object)[check]
    out = cat(letters, zpad(body, 12))
    wrong = np.flatnonzero(rng.random(n) < 0.002)  # a few typed-in wrong check letters
    for i in wrong.tolist():
        good = out[i][0]
        out[i] = UPN_LETTERS[(UPN_LETTERS.index(good) + 1) % 23] + out[i][1:]
    return out


def sequential_ids(
    rng: np.random.Generator, n: int, prefix: str, width: int, start: int
) -> np.ndarray:
    """Unique, increasing ids with random gaps (``STE04049635`` style)."""
    nums = start + np.cumsum(rng.integers(1, 40, n))
    return cat(prefix, zpad(nums, width))


def expand(
    ptr: np.ndarray, values: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each entry of ``groups``, all its CSR values: (position in groups, value)."""
    lens = ptr[groups + 1] - ptr[groups]
    owner = np.repeat(np.arange(len(groups)), lens)
    starts = np.repeat(ptr[groups], lens)
    offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
    return owner, values[starts + offs]


def traits(rng: np.random.Generator, n: int, kind: str) -> dict[str, np.ndarray]:
    """Hidden per-student propensities that drive attendance, behaviour and work."""
    pa = rng.random(n) < 0.08
    p_absent = np.where(pa, rng.uniform(0.13, 0.35, n), rng.uniform(0.0, 0.04, n))
    latey = rng.random(n) < 0.12
    p_late = np.where(latey, rng.uniform(0.04, 0.12, n), rng.uniform(0.0, 0.015, n))
    truant = rng.random(n) < 0.05
    p_truant = np.where(truant | pa, rng.uniform(0.01, 0.045, n), rng.uniform(0.0, 0.005, n))
    ability = rng.normal(0.0, 1.0, n)
    diligence = np.clip(0.82 + 0.08 * ability - 0.2 * pa + rng.normal(0, 0.08, n), 0.3, 0.99)
    scale = 0.35 if kind == "college" else 1.0
    naughty = rng.random(n) < 0.1
    neg_rate = scale * np.where(naughty, rng.uniform(0.08, 0.25, n), rng.uniform(0.0, 0.03, n))
    pos_rate = scale * rng.uniform(0.02, 0.14, n) * (1 + 0.3 * np.clip(ability, -1, 2))
    return {
        "pa": pa,
        "p_absent": p_absent,
        "p_late": p_late,
        "p_truant": p_truant,
        "ability": ability,
        "diligence": diligence,
        "neg_rate": neg_rate,
        "pos_rate": np.clip(pos_rate, 0.0, None),
    }


def student_basics(
    rng: np.random.Generator,
    n: int,
    year: np.ndarray,
    academic_year: int,
    adult: np.ndarray | None = None,
) -> Cols:
    """Names, date of birth, UPN, admission number for n pupils."""
    female, fore, sur = names(rng, n)
    pref = blank(n)
    nick = np.array([NICKNAMES.get(f, "") for f in fore.tolist()], dtype=object)
    use_nick = (nick != "") & (rng.random(n) < 0.4)
    pref[use_nick] = nick[use_nick]
    chosen = rng.random(n) < 0.01
    pref[chosen] = np.where(
        female[chosen], pick(rng, MALE, int(chosen.sum())), pick(rng, FEMALE, int(chosen.sum()))
    )
    year_num = np.array([int(y) if y.isdigit() else 13 for y in year.tolist()])
    birth_year = academic_year - year_num - 5
    offset = rng.integers(0, 365, n)
    if adult is not None and adult.any():
        birth_year = np.where(adult, academic_year - rng.integers(19, 58, n), birth_year)
    dob = (birth_year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    dob = dob + np.timedelta64(243, "D") + offset.astype("timedelta64[D]")  # from 1 Sept
    return {
        "forename": fore,
        "surname": sur,
        "preferred_forename": pref,
        "date_of_birth": date_strings(dob),
        "_female": female,
        "_birth_year": birth_year,
    }


# --------------------------------------------------------------------------- contacts
REL_P1 = (["Mother", "Father", "Carer", "Grandparent", "Guardian"], [0.72, 0.18, 0.04, 0.04, 0.02])
REL_P2 = (
    ["Father", "Mother", "Step-father", "Step-mother", "Grandparent", "Carer"],
    [0.62, 0.12, 0.08, 0.04, 0.1, 0.04],
)
REL_P3 = (["Grandparent", "Aunt", "Uncle", "Family friend", "Other"], [0.5, 0.18, 0.12, 0.1, 0.1])
REL_ADULT = (["Partner", "Spouse", "Parent", "Emergency contact"], [0.4, 0.2, 0.25, 0.15])
FEMALE_RELS = {"Mother", "Step-mother", "Aunt"}
MALE_RELS = {"Father", "Step-father", "Uncle"}
PR_PROB = {
    "Mother": 0.98,
    "Father": 0.95,
    "Carer": 0.8,
    "Guardian": 0.95,
    "Step-father": 0.3,
    "Step-mother": 0.3,
    "Grandparent": 0.1,
}


def contacts_and_portal(
    rng: np.random.Generator, unit: Unit, phones: PhonePool
) -> tuple[Cols, Cols]:
    """Contacts (1–3 per pupil, siblings sharing theirs) and the portal accounts."""
    st = unit.students
    n = unit.n
    sid = st["student_id"]
    adult = st["cohort"] == "adult"
    # Sibling pairs: the younger shares every contact (and the household) of the older.
    eligible = np.flatnonzero(~adult)
    k = int(round(0.035 * len(eligible)))
    perm = rng.permutation(eligible)
    older, younger = perm[:k], perm[k : 2 * k]
    sibling_of = np.full(n, -1)
    sibling_of[younger] = older
    same_name = rng.random(k) < 0.9
    st["surname"][younger[same_name]] = st["surname"][older[same_name]]

    owners = np.flatnonzero(sibling_of < 0)
    n_c = rng.choice([1, 2, 3], size=len(owners), p=[0.25, 0.6, 0.15])
    n_c[adult[owners]] = 1
    owner = np.repeat(owners, n_c)
    prio = np.arange(len(owner)) - np.repeat(np.cumsum(n_c) - n_c, n_c) + 1
    m = len(owner)
    rel = np.empty(m, dtype=object)
    for pr_mask, (vals, p) in (
        (prio == 1, REL_P1),
        (prio == 2, REL_P2),
        (prio == 3, REL_P3),
    ):
        rel[pr_mask] = pick(rng, vals, int(pr_mask.sum()), p)
    # A second parent is the other parent, not a second mother or father.
    second = np.flatnonzero((prio == 2) & np.isin(rel, ["Mother", "Father"]))
    clash = second[rel[second] == rel[second - 1]]
    rel[clash] = np.where(rel[clash] == "Father", "Mother", "Father")
    ad = adult[owner]
    rel[ad] = pick(rng, REL_ADULT[0], int(ad.sum()), REL_ADULT[1])
    female = np.array([r in FEMALE_RELS for r in rel.tolist()])
    male = np.array([r in MALE_RELS for r in rel.tolist()])
    female = np.where(female | male, female, rng.random(m) < 0.6)
    _, fore, sur = names(rng, m, female)
    sur = np.where(rng.random(m) < 0.75, st["surname"][owner], sur).astype(object)
    title = titles(rng, female)
    pr_p = np.array([PR_PROB.get(r, 0.02) for r in rel.tolist()])
    pr = rng.random(m) < pr_p
    pr[ad] = False

    has_mobile = rng.random(m) < np.where(prio == 1, 0.94, 0.82)
    mobile = blank(m)
    mobile[has_mobile] = phones.mobiles(int(has_mobile.sum()))
    bad = has_mobile & (rng.random(m) < 0.006)
    mobile[bad] = pick(rng, INVALID_PHONES, int(bad.sum()))
    has_email = rng.random(m) < 0.85
    domain = pick(rng, ["example.com", "example.net", "example.org"], m, [0.7, 0.2, 0.1])
    suffix = np.where(rng.random(m) < 0.5, istr(rng.integers(1, 99, m)), "").astype(object)
    email = cat(SLUG(fore), ".", SLUG(sur), suffix, "@", domain)
    email = np.where(has_email, email, "").astype(object)
    home = np.where(rng.random(m) < 0.25, landlines(rng, m), "").astype(object)

    household = addresses(rng, n, unit.area)
    own_addr = addresses(rng, m, unit.area)
    apart = (prio > 1) & (rng.random(m) < 0.2)
    addr = {
        k2: np.where(apart, own_addr[k2], household[k2][owner]).astype(object) for k2 in household
    }
    sms = yn(rng.random(m) >= 0.05)
    emc = yn(rng.random(m) >= 0.04)
    cid = sequential_ids(rng, m, f"{unit.pfx}CON", 7, 100000)
    entity = {
        "contact_id": cid,
        "title": title,
        "forename": fore,
        "surname": sur,
        "relationship": rel,
        "priority": istr(prio),
        "parental_responsibility": yn(pr),
        "mobile": mobile,
        "email": email,
        "home_phone": home,
        **addr,
        "sms_consent": sms,
        "email_consent": emc,
    }

    # Rows: each entity for its owner, and again for the owner's younger sibling.
    younger_of = np.full(n, -1)
    younger_of[older] = younger
    ent_idx = np.arange(m)
    sib_ent = ent_idx[younger_of[owner] >= 0]
    row_ent = np.concatenate([ent_idx, sib_ent])
    row_st = np.concatenate([owner, younger_of[owner[sib_ent]]])
    order = np.lexsort((prio[row_ent], row_st))
    row_ent, row_st = row_ent[order], row_st[order]
    contacts = {"student_id": sid[row_st], **{c: v[row_ent] for c, v in entity.items()}}

    # Portal accounts: mostly the parents with responsibility, fewer for adults.
    p_acc = np.where(prio == 1, 0.86, np.where(prio == 2, 0.42, 0.04))
    p_acc = np.where(pr, p_acc, p_acc * 0.25)
    p_acc[ad] = 0.08
    acc = np.flatnonzero(rng.random(m) < p_acc)
    a = len(acc)
    acc_id = sequential_ids(rng, a, f"{unit.pfx}PA", 7, 2000000)
    valid_mobile = has_mobile[acc] & ~bad[acc]
    digits = np.array(
        ["".join(ch for ch in s if ch.isdigit())[-5:] if s else "0" for s in mobile[acc].tolist()]
    )
    e164 = cat("+4474001", digits.astype(object))
    r = rng.random(a)
    p_mob = np.where(
        valid_mobile, np.where(r < 0.78, e164, np.where(r < 0.88, mobile[acc], "")), ""
    ).astype(object)
    new_num = (valid_mobile & (r >= 0.88) & (r < 0.95)) | (~valid_mobile & (r < 0.3))
    p_mob[new_num] = phones.mobiles(int(new_num.sum()))
    p_email = np.where(has_email[acc] & (rng.random(a) < 0.95), email[acc], "").astype(object)
    registered = yn(rng.random(a) >= 0.08)
    name = cat(fore[acc], " ", sur[acc])
    # Links: the owner, and the owner's younger sibling (one account, two students).
    a_idx = np.arange(a)
    sib = a_idx[younger_of[owner[acc]] >= 0]
    link_acc = np.concatenate([a_idx, sib])
    link_st = np.concatenate([owner[acc], younger_of[owner[acc[sib]]]])
    order = np.lexsort((link_st, link_acc))
    link_acc, link_st = link_acc[order], link_st[order]
    status = np.where(rng.random(len(link_acc)) < 0.045, "suspended", "active").astype(object)
    portal = {
        "account_id": acc_id[link_acc],
        "student_id": sid[link_st],
        "name": name[link_acc],
        "mobile": p_mob[link_acc],
        "email": p_email[link_acc],
        "registered": registered[link_acc],
        "link_status": status,
    }
    return contacts, portal


# --------------------------------------------------------------------------- medical
CONDITIONS = [
    (
        "Asthma",
        ["mild", "moderate", "severe"],
        [0.6, 0.3, 0.1],
        [
            "Blue reliever inhaler kept in bag.",
            "Spare inhaler held in the medical room.",
            "Exercise-induced; inhaler before PE.",
        ],
    ),
    (
        "Nut allergy",
        ["moderate", "severe"],
        [0.3, 0.7],
        [
            "Carries two adrenaline auto-injectors (EpiPen).",
            "Peanut and tree nut; EpiPen in office.",
        ],
    ),
    (
        "Epilepsy",
        ["moderate", "severe"],
        [0.6, 0.4],
        [
            "Buccal midazolam in the medical room; care plan on file.",
            "Absence seizures; inform parents of any episode.",
        ],
    ),
    (
        "Type 1 diabetes",
        ["moderate", "severe"],
        [0.5, 0.5],
        ["Insulin pump; may need to eat in lessons.", "Checks blood glucose before PE."],
    ),
    ("Eczema", ["mild", "moderate"], [0.7, 0.3], ["Emollient cream applied at lunch."]),
    ("Hay fever", ["mild"], [1.0], ["Antihistamine in summer term."]),
    ("Coeliac disease", ["moderate"], [1.0], ["Gluten-free meals arranged with catering."]),
    ("Migraine", ["mild", "moderate"], [0.6, 0.4], ["May need to rest in the medical room."]),
    ("Bee sting allergy", ["severe"], [1.0], ["Anaphylaxis risk; EpiPen carried."]),
    (
        "Sickle cell disease",
        ["moderate", "severe"],
        [0.5, 0.5],
        ["Keep warm and hydrated; toilet pass."],
    ),
]


def medical(rng: np.random.Generator, unit: Unit) -> Cols:
    """Medical notes for about 5% of pupils (one or two conditions each)."""
    who = np.flatnonzero(rng.random(unit.n) < 0.05)
    k = len(who)
    weights = np.array([0.35, 0.1, 0.06, 0.05, 0.12, 0.12, 0.05, 0.08, 0.03, 0.04])
    first = rng.choice(len(CONDITIONS), size=k, p=weights / weights.sum())
    two = rng.random(k) < 0.18
    second = (first + rng.integers(1, len(CONDITIONS), k)) % len(CONDITIONS)
    st = np.concatenate([who, who[two]])
    cond = np.concatenate([first, second[two]])
    order = np.lexsort((cond, st))
    st, cond = st[order], cond[order]
    names_ = np.array([c[0] for c in CONDITIONS], dtype=object)
    sev = np.empty(len(st), dtype=object)
    det = np.empty(len(st), dtype=object)
    for i, (_, sevs, p, details) in enumerate(CONDITIONS):
        mask = cond == i
        sev[mask] = pick(rng, sevs, int(mask.sum()), p)
        det[mask] = pick(rng, details, int(mask.sum()))
    det[rng.random(len(st)) < 0.1] = ""
    return {
        "student_id": unit.students["student_id"][st],
        "condition": names_[cond],
        "details": det,
        "severity": sev,
    }


# --------------------------------------------------------------------------- staff
def make_staff(rng: np.random.Generator, n: int, pfx: str, phones: PhonePool) -> Cols:
    """n staff members with ids ``<pfx>STF0001``…, unique e-mail addresses."""
    female, fore, sur = names(rng, n, rng.random(n) < 0.62)
    ids = cat(f"{pfx}STF", zpad(np.arange(1, n + 1), 4))
    local = cat(SLUG(fore).astype(object), ".", SLUG(sur))
    # Make e-mail addresses unique where two staff share a name.
    seen: dict[str, int] = {}
    uniq = []
    for loc in local.tolist():
        seen[loc] = seen.get(loc, 0) + 1
        uniq.append(loc if seen[loc] == 1 else f"{loc}{seen[loc]}")
    email = cat(np.array(uniq, dtype=object), "@example.org")
    mobile = blank(n)
    has = rng.random(n) < 0.6
    mobile[has] = phones.mobiles(int(has.sum()))
    return {
        "staff_id": ids,
        "title": titles(rng, female),
        "forename": fore,
        "surname": sur,
        "email": email,
        "mobile": mobile,
    }


def responsibility_rows(rows: list[tuple[int, str, str]], staff_ids: np.ndarray) -> Cols:
    """(staff index, role, scope) tuples as sorted, unique columns."""
    rows = sorted(set(rows), key=lambda r: (r[1], r[2], r[0]))
    return {
        "staff_id": np.array([staff_ids[r[0]] for r in rows], dtype=object),
        "role": np.array([r[1] for r in rows], dtype=object),
        "scope": np.array([r[2] for r in rows], dtype=object),
    }


def finish_students(
    rng: np.random.Generator, st: Cols, phones: PhonePool, p_mobile: np.ndarray, email: np.ndarray
) -> None:
    """Pupils' mobiles (with probability ``p_mobile``) and e-mail addresses."""
    n = len(st["student_id"])
    has = rng.random(n) < p_mobile
    st["mobile"] = blank(n)
    st["mobile"][has] = phones.mobiles(int(has.sum()))
    st["email"] = email


def academic_year_of(date: dt.date) -> int:
    """The calendar year the academic year containing ``date`` began in."""
    return date.year if date.month >= 9 else date.year - 1

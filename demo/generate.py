#!/usr/bin/env python3
"""Generate demo/people.csv: the seeded company `accessdesk demo` provisions.

Northwind Lattice is fictional: about 500 people in twelve departments and eight
locations, with a management tree (everyone but the CEO has a manager who exists), cost
centres per department, a handful of pending joiners, people on leave, earlier leavers,
and names from many places (some in their own script, some with preferred names).

Deterministic: the same seed gives the same file, byte for byte (Python's `random.Random`
with an integer seed is stable across Python 3 versions). The CSV is committed; nothing
runs at demo time. Regenerate with:

    python3 demo/generate.py > demo/people.csv

Employee ids follow hire order (earliest start date first). The engine works through a
wave in employee-id order, so what the scenario needs early sits among the early hires
by construction: the payroll team (whose Okta group the scenario breaks for triage) was
hired when the company started paying people, and the leaver is picked from the first
active hires (see src/demo/scenario.rs).
"""

import random
import sys
import unicodedata

SEED = 20261126
DOMAIN = "northwind.example"
TODAY = (2026, 11, 26)

# (given, family, ascii given, ascii family) pools per region. None means "derive the
# ASCII form by stripping accents".
NAMES = {
    "en": (
        ["James", "Olivia", "Amelia", "Harry", "Oliver", "Isla", "Jack", "Grace", "Noah",
         "Emily", "George", "Sophie", "Charlotte", "Thomas", "Ella", "William", "Lucy",
         "Daniel", "Hannah", "Samuel", "Chloe", "Joseph", "Megan", "Ryan", "Aoife", "Siobhán",
         "Niamh", "Ciarán", "Robert", "Katherine", "Michael", "Elizabeth"],
        ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
         "Patel", "Robinson", "Wright", "Thompson", "Evans", "Walker", "O'Brien", "O'Neill",
         "Murphy", "Kelly", "MacDonald", "Hughes", "Clarke", "Edwards", "Smith-Jones",
         "Fitzgerald", "Green", "Hall"],
    ),
    "us": (
        ["Ethan", "Ava", "Mason", "Mia", "Logan", "Harper", "Elijah", "Abigail", "Aiden",
         "Madison", "Carter", "Avery", "Jayden", "Scarlett", "Luke", "Zoë", "Dylan", "Layla",
         "Gabriel", "Nora", "Isaiah", "Riley", "Caleb", "Hazel", "DeShawn", "Tamika"],
        ["Miller", "Garcia", "Rodriguez", "Martinez", "Anderson", "Jackson", "White",
         "Harris", "Martin", "Lee", "Nguyen", "Kim", "Washington", "Lopez", "Gonzalez",
         "Scott", "Young", "King", "Hill", "Baker", "Nelson", "Carter", "Mitchell", "Perez"],
    ),
    "de": (
        ["Jürgen", "Anke", "Lena", "Lukas", "Felix", "Jonas", "Leonie", "Maximilian",
         "Sophie", "Paul", "Mia", "Björn", "Katrin", "Jörg", "Uwe", "Sören", "Greta",
         "Hannes", "Ines", "Matthias"],
        ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
         "Schulz", "Hoffmann", "Schröder", "Koch", "Weiß", "Krüger", "Hartmann", "Lange",
         "Zimmermann", "Braun", "von Arnim", "Groß"],
    ),
    "nl": (
        ["Anke", "Daan", "Sem", "Fleur", "Sanne", "Bram", "Lotte", "Joost", "Maaike", "Ruben"],
        ["van der Berg", "de Jong", "Jansen", "de Vries", "van Dijk", "Bakker", "Visser",
         "Smit", "Meijer", "de Boer", "van Leeuwen", "Mulder"],
    ),
    "nordic": (
        ["Søren", "Åsa", "Bjørn", "Ingrid", "Mikkel", "Freja", "Lars", "Sigrid", "Ole",
         "Maja", "Eirik", "Astrid"],
        ["Ødegaard", "Lindqvist", "Nielsen", "Johansson", "Hansen", "Berg", "Sørensen",
         "Åberg", "Halvorsen", "Karlsson", "Mikkelsen", "Lund"],
    ),
    "fr": (
        ["François", "Hélène", "Zoë", "Amélie", "Étienne", "Léa", "Théo", "Camille",
         "Noémie", "Jérôme", "Chloé", "Benoît", "Inès", "Gaël"],
        ["Dubois", "Lefèvre", "Moreau", "Laurent", "Girard", "Rousseau", "Bonnet",
         "Fontaine", "Chevalier", "Mercier", "Lemaître", "Faure"],
    ),
    "es": (
        ["José", "María", "Lucía", "Álvaro", "Sofía", "Javier", "Martina", "Sergio",
         "Núria", "Íñigo", "Paula", "Andrés", "Juan"],
        ["García", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Núñez", "Gómez",
         "Jiménez", "de la Cruz", "Ortega", "Castillo", "Muñoz"],
    ),
    "br": (
        ["João", "Ana", "Luíza", "Gabriel", "Beatriz", "Thiago", "Mariana", "Rafael",
         "Júlia", "Gonçalo", "Letícia", "Caio"],
        ["Silva", "Santos", "Oliveira", "Souza", "Gonçalves", "Lima", "Araújo", "Pereira",
         "Carvalho", "Ribeiro", "Conceição", "Magalhães"],
    ),
    "pl": (
        ["Łukasz", "Małgorzata", "Katarzyna", "Paweł", "Agnieszka", "Michał", "Zofia",
         "Wojciech"],
        ["Wójcik", "Kowalski", "Nowak", "Lewandowski", "Zieliński", "Wiśniewski",
         "Dąbrowski", "Kamiński"],
    ),
    "in": (
        ["Priya", "Arjun", "Ananya", "Rohan", "Kavya", "Vikram", "Aditi", "Rahul", "Sneha",
         "Karthik", "Divya", "Siddharth", "Meera", "Aarav", "Lakshmi", "Nikhil"],
        ["Sharma", "Iyer", "Patel", "Reddy", "Nair", "Gupta", "Krishnan", "Menon", "Rao",
         "Banerjee", "Chatterjee", "Mehta", "Subramanian", "Pillai", "Joshi", "Kulkarni"],
    ),
}

# Names written in their own script, with the romanisation used for the login.
SCRIPT_NAMES = {
    "ja": (
        [("太郎", "taro"), ("花子", "hanako"), ("翔", "sho"), ("結衣", "yui"), ("健", "ken"),
         ("美咲", "misaki"), ("大輔", "daisuke"), ("陽菜", "hina")],
        [("山田", "yamada"), ("佐藤", "sato"), ("鈴木", "suzuki"), ("高橋", "takahashi"),
         ("田中", "tanaka"), ("伊藤", "ito"), ("渡辺", "watanabe"), ("中村", "nakamura")],
    ),
    "ja-latn": (
        [("Haruto", "haruto"), ("Yuki", "yuki"), ("Sakura", "sakura"), ("Ren", "ren"),
         ("Aoi", "aoi"), ("Riku", "riku")],
        [("Kobayashi", "kobayashi"), ("Kato", "kato"), ("Yoshida", "yoshida"),
         ("Yamamoto", "yamamoto"), ("Matsumoto", "matsumoto"), ("Inoue", "inoue")],
    ),
    "ru": (
        [("Иван", "ivan"), ("Ольга", "olga"), ("Дмитрий", "dmitry"), ("Анна", "anna"),
         ("Сергей", "sergey"), ("Наталья", "natalya")],
        [("Петров", "petrov"), ("Иванов", "ivanov"), ("Смирнов", "smirnov"),
         ("Кузнецов", "kuznetsov"), ("Попов", "popov"), ("Соколов", "sokolov")],
    ),
    "zh": (
        [("伟", "wei"), ("娜", "na"), ("静", "jing"), ("磊", "lei"), ("芳", "fang")],
        [("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen")],
    ),
    "el": (
        [("Ελένη", "eleni"), ("Νίκος", "nikos"), ("Μαρία", "maria")],
        [("Νικολάου", "nikolaou"), ("Γεωργίου", "georgiou"), ("Οικονόμου", "oikonomou")],
    ),
}

# Given names whose family name takes the feminine form (Russian -ов/-ова, Polish -ski/-ska).
FEMININE = {"Ольга", "Анна", "Наталья", "Małgorzata", "Katarzyna", "Agnieszka", "Zofia"}


def feminine(family, ascii_family):
    if family.endswith("ов"):
        return family + "а", ascii_family + "a"
    if family.endswith("ski"):
        return family[:-1] + "a", ascii_family[:-1] + "a"
    return family, ascii_family


PREFERRED = {
    "Robert": "Bob", "Katherine": "Kate", "Michael": "Mike", "Elizabeth": "Liz",
    "William": "Will", "Maximilian": "Max", "Иван": "Ваня", "Ольга": "Оля",
    "Siddharth": "Sid", "Małgorzata": "Gosia", "Alexander": "Alex", "Samuel": "Sam",
    "Jérôme": "Jé", "Katarzyna": "Kasia",
}

# Location -> name regions drawn from (weights), and how often names there are written in
# their own script.
LOCATIONS = {
    "London": ["en"] * 6 + ["in", "pl", "fr", "es", "nordic"],
    "Berlin": ["de"] * 6 + ["pl", "nl", "nordic", "ru", "el", "en"],
    "New York": ["us"] * 7 + ["es", "in", "zh", "en", "el"],
    "San Francisco": ["us"] * 6 + ["in", "in", "zh", "ja-latn", "es", "ru"],
    "Tokyo": ["ja"] * 5 + ["ja-latn"] * 3 + ["us", "zh"],
    "São Paulo": ["br"] * 7 + ["es", "es", "us"],
    "Bengaluru": ["in"] * 10 + ["us"],
    "Amsterdam": ["nl"] * 6 + ["de", "en", "fr", "nordic"],
    "Remote": ["en", "us", "de", "fr", "es", "br", "in", "nordic", "pl", "nl", "ru", "el"],
}

# Department -> (cost centre, head title, head reports to, locations, team lead title,
# [(IC title, weight)], number of teams, team size range)
DEPARTMENTS = [
    ("Engineering", "CC-110", "VP Engineering", "CTO",
     ["Berlin", "London", "San Francisco", "Bengaluru", "Remote", "Amsterdam"],
     "Engineering Manager",
     [("Software Engineer", 10), ("Senior Software Engineer", 8), ("Staff Engineer", 2),
      ("Site Reliability Engineer", 3), ("QA Engineer", 2), ("Mobile Engineer", 2)],
     15, (6, 9)),
    ("Data", "CC-115", "Director of Data", "CTO",
     ["Berlin", "London", "Bengaluru", "Remote"],
     "Data Engineering Manager",
     [("Data Engineer", 4), ("Data Scientist", 3), ("Analytics Engineer", 2)],
     2, (5, 7)),
    ("Product", "CC-120", "VP Product", "CPO",
     ["London", "San Francisco", "Berlin", "Remote"],
     "Group Product Manager",
     [("Product Manager", 3), ("Senior Product Manager", 2), ("Product Analyst", 1)],
     3, (4, 5)),
    ("Design", "CC-125", "Head of Design", "CPO",
     ["London", "Berlin", "Amsterdam", "Remote"],
     "Design Manager",
     [("Product Designer", 4), ("UX Researcher", 1), ("Content Designer", 1)],
     2, (4, 6)),
    ("Sales", "CC-210", "VP Sales", "CRO",
     ["New York", "London", "São Paulo", "Tokyo", "San Francisco", "Amsterdam"],
     "Sales Manager",
     [("Account Executive", 6), ("Sales Development Representative", 4),
      ("Solutions Engineer", 2), ("Sales Operations Analyst", 1)],
     11, (6, 9)),
    ("Customer Success", "CC-220", "VP Customer Success", "CRO",
     ["London", "New York", "São Paulo", "Tokyo", "Bengaluru"],
     "Support Manager",
     [("Support Engineer", 5), ("Customer Success Manager", 3), ("Technical Account Manager", 1)],
     9, (6, 8)),
    ("Marketing", "CC-230", "VP Marketing", "CEO",
     ["London", "New York", "San Francisco", "Remote"],
     "Marketing Manager",
     [("Marketing Specialist", 3), ("Content Marketer", 2), ("Events Manager", 1),
      ("Growth Analyst", 1)],
     4, (6, 8)),
    ("Finance", "CC-310", "Controller", "CFO",
     ["London", "New York"],
     "Finance Manager",
     [("Accountant", 3), ("Financial Analyst", 3), ("Treasury Analyst", 1)],
     2, (5, 6)),
    ("People", "CC-320", "Head of People Operations", "Chief People Officer",
     ["London", "Berlin", "New York", "Bengaluru"],
     "People Partner Lead",
     [("HR Business Partner", 2), ("Recruiter", 3), ("People Operations Specialist", 2)],
     2, (5, 6)),
    ("Legal", "CC-330", "Deputy General Counsel", "General Counsel",
     ["London", "New York"],
     "Legal Manager",
     [("Counsel", 2), ("Paralegal", 1), ("Privacy Counsel", 1)],
     1, (5, 5)),
    ("IT & Security", "CC-340", "Head of IT & Security", "COO",
     ["London", "Berlin", "New York", "Bengaluru"],
     "IT Manager",
     [("IT Support Specialist", 4), ("Systems Administrator", 2), ("Security Engineer", 2),
      ("Identity Engineer", 1)],
     3, (5, 6)),
    ("Operations", "CC-350", "Head of Operations", "COO",
     ["London", "New York", "Berlin", "Tokyo", "São Paulo"],
     "Operations Manager",
     [("Operations Specialist", 3), ("Procurement Specialist", 1),
      ("Facilities Coordinator", 2)],
     3, (5, 6)),
]

EXECUTIVES = [
    ("CEO", "London"), ("CTO", "Berlin"), ("CFO", "London"), ("COO", "New York"),
    ("CRO", "New York"), ("CPO", "San Francisco"), ("Chief People Officer", "London"),
    ("General Counsel", "London"),
]

TARGET = 500


def ascii_fold(s):
    special = {"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ß": "ss", "æ": "ae", "Æ": "AE",
               "đ": "d", "'": "", " ": "", "-": ""}
    out = "".join(special.get(c, c) for c in s)
    out = unicodedata.normalize("NFKD", out)
    return "".join(c for c in out if c.isascii() and c.isalnum()).lower()


class Company:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.people = []
        self.emails = set()

    def name(self, location):
        region = self.rng.choice(LOCATIONS[location])
        if region in SCRIPT_NAMES:
            given, family = SCRIPT_NAMES[region]
            (g, ga), (f, fa) = self.rng.choice(given), self.rng.choice(family)
        else:
            given, family = NAMES[region]
            g, f = self.rng.choice(given), self.rng.choice(family)
            ga, fa = ascii_fold(g), ascii_fold(f)
        if g in FEMININE:
            f, fa = feminine(f, fa)
        local = f"{ga}.{fa}"
        email, n = f"{local}@{DOMAIN}", 1
        while email in self.emails:
            n += 1
            email = f"{local}{n}@{DOMAIN}"
        self.emails.add(email)
        preferred = PREFERRED.get(g, "") if self.rng.random() < 0.6 else ""
        return g, f, preferred, email

    def date(self, first_year, last_year, not_before=(2016, 3, 1)):
        """A start date in the given years, after `not_before` (a manager's own start)."""
        y = self.rng.randint(max(first_year, not_before[0]), max(last_year, not_before[0]))
        m = self.rng.randint(1, 12)
        d = self.rng.randint(1, 28)
        if (y, m, d) > TODAY:
            y, m = TODAY[0], self.rng.randint(1, TODAY[1] - 1)
        if (y, m, d) <= not_before:
            y, m, d = not_before[0], not_before[1], min(not_before[2] + 1 + self.rng.randint(0, 20), 28)
            if (y, m, d) <= not_before:
                y, m, d = (y, m + 1, d) if m < 12 else (y + 1, 1, d)
        return (y, m, d)

    def add(self, title, department, cc, location, manager, start, key=None):
        g, f, preferred, email = self.name(location)
        p = {
            "key": key or f"p{len(self.people)}",
            "first_name": g, "last_name": f, "preferred_name": preferred, "email": email,
            "department": department, "title": title, "manager": manager,
            "location": location, "cost_center": cc, "status": "active",
            "start": start, "end": None,
        }
        self.people.append(p)
        return p


def build(seed):
    c = Company(seed)
    execs = {}
    ceo = c.add("Chief Executive Officer", "Executive", "CC-001", "London", None, (2016, 3, 1))
    execs["CEO"] = ceo
    for i, (title, loc) in enumerate(EXECUTIVES[1:]):
        execs[title] = c.add(title if len(title) > 4 else {
            "CTO": "Chief Technology Officer", "CFO": "Chief Financial Officer",
            "COO": "Chief Operating Officer", "CRO": "Chief Revenue Officer",
            "CPO": "Chief Product Officer"}[title],
            "Executive", "CC-001", loc, ceo, (2016 + i // 4, 4 + i, 1))
    # The payroll team: hired when the company started running payroll.
    payroll_lead = c.add("Payroll Manager", "Finance", "CC-310", "London", execs["CFO"], (2016, 9, 1))
    for i in range(4):
        c.add("Payroll Specialist", "Finance", "CC-310", "London" if i < 3 else "New York",
              payroll_lead, (2016, 10, 3 + 7 * i))
    for (dept, cc, head_title, head_of, locs, lead_title, ics, teams, size) in DEPARTMENTS:
        head = c.add(head_title, dept, cc, c.rng.choice(locs), execs[head_of],
                     c.date(2016, 2018, execs[head_of]["start"]))
        titles = [t for t, w in ics for _ in range(w)]
        for _ in range(teams):
            team_loc = c.rng.choice(locs)
            lead = c.add(lead_title, dept, cc, team_loc, head, c.date(2016, 2022, head["start"]))
            for _ in range(c.rng.randint(*size)):
                loc = team_loc if c.rng.random() < 0.75 else c.rng.choice(locs)
                c.add(c.rng.choice(titles), dept, cc, loc, lead, c.date(2017, 2026, lead["start"]))
    # Trim or pad Engineering teams to the target size (pads with engineers, trims the
    # most recent individual contributors).
    while len(c.people) < TARGET:
        leads = [p for p in c.people if p["title"] == "Engineering Manager"]
        lead = c.rng.choice(leads)
        c.add("Software Engineer", "Engineering", "CC-110", lead["location"], lead,
              c.date(2020, 2026, lead["start"]))
    managers = {id(p["manager"]) for p in c.people if p["manager"]}
    while len(c.people) > TARGET:
        ics = [p for p in c.people if id(p) not in managers and p["department"] not in
               ("Executive", "Finance")]
        c.people.remove(max(ics, key=lambda p: p["start"]))

    # Statuses: pending joiners (start in the future), people on leave, earlier leavers.
    ics = [p for p in c.people if id(p) not in managers and p["department"] not in
           ("Executive",) and p["title"] not in ("Payroll Specialist",)]
    for p in c.rng.sample(ics, 8):
        p["status"] = "pending"
        p["start"] = (2027, c.rng.randint(1, 3), c.rng.choice([1, 4, 11, 18]))
    rest = [p for p in ics if p["status"] == "active"]
    for p in c.rng.sample(rest, 4):
        p["status"] = "leave"
    rest = [p for p in rest if p["status"] == "active"]
    for p in c.rng.sample(rest, 6):
        p["status"] = "terminated"
        p["end"] = (2026, c.rng.randint(1, 10), c.rng.randint(1, 28))

    # Employee ids in hire order.
    c.people.sort(key=lambda p: (p["start"], p["last_name"], p["email"]))
    for i, p in enumerate(c.people):
        p["id"] = f"E{i + 1:04d}"
    return c.people


def fmt_date(d):
    return f"{d[0]:04d}-{d[1]:02d}-{d[2]:02d}" if d else ""


def write(people, out):
    import csv
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["employee_id", "first_name", "last_name", "preferred_name", "email",
                "department", "title", "manager_id", "location", "cost_center", "status",
                "start_date", "end_date"])
    for p in people:
        w.writerow([p["id"], p["first_name"], p["last_name"], p["preferred_name"],
                    p["email"], p["department"], p["title"],
                    p["manager"]["id"] if p["manager"] else "", p["location"],
                    p["cost_center"], p["status"], fmt_date(p["start"]), fmt_date(p["end"])])


if __name__ == "__main__":
    people = build(SEED)
    write(people, sys.stdout)
    early = [p["id"] for p in people if p["title"] == "Payroll Specialist"]
    print(f"{len(people)} people; payroll specialists {early}", file=sys.stderr)

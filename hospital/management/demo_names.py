"""Names for `manage.py seed_demo`, of many origins, so that demo data looks like a real city's patient list.

Built in rather than a dependency (Faker): a few hundred names are plenty for demos and benchmarks.
"""

# ruff: noqa: RUF001 (Turkish names use the dotless i on purpose)
# fmt: off
FEMALE_FIRST_NAMES = [
    # English, Irish, Scottish, Welsh
    "Emma", "Olivia", "Ava", "Sophie", "Charlotte", "Amelia", "Grace", "Lily", "Hannah", "Ella",
    "Chloe", "Lucy", "Mia", "Ruby", "Isla", "Freya", "Evie", "Alice", "Margaret", "Susan",
    "Linda", "Barbara", "Patricia", "Jennifer", "Elizabeth", "Mary", "Karen", "Nancy", "Dorothy", "Helen",
    "Siobhan", "Aoife", "Niamh", "Ciara", "Moira", "Eilidh", "Rhiannon", "Cerys",
    # Spanish, Portuguese, Italian, French
    "Sofía", "Lucía", "María", "Carmen", "Isabel", "Valentina", "Camila", "Paula", "Inês", "Beatriz",
    "Giulia", "Francesca", "Chiara", "Alessia", "Chloé", "Camille", "Léa", "Manon", "Élise", "Juliette",
    # German, Dutch, Nordic
    "Anna", "Lena", "Leonie", "Greta", "Johanna", "Sanne", "Femke", "Ingrid", "Astrid", "Sigrid",
    "Maja", "Elin", "Saga", "Freja",
    # Slavic, Baltic, Greek, Hungarian
    "Natalia", "Olga", "Katarzyna", "Agnieszka", "Zofia", "Milena", "Ivana", "Jelena", "Daria", "Irina",
    "Eleni", "Katerina", "Dimitra", "Zsófia", "Réka",
    # Arabic, Persian, Turkish, Hebrew
    "Fatima", "Aisha", "Layla", "Mariam", "Noor", "Yasmin", "Leila", "Shirin", "Parisa", "Elif",
    "Zeynep", "Ayşe", "Noa", "Tamar", "Yael",
    # South Asian
    "Priya", "Ananya", "Aditi", "Kavya", "Lakshmi", "Deepa", "Sunita", "Meera", "Ayesha", "Sana",
    # East and Southeast Asian
    "Mei", "Xiu", "Li Na", "Yan", "Hana", "Yuki", "Sakura", "Aiko", "Ji-woo", "Seo-yeon",
    "Min-ji", "Linh", "Thao", "Mai", "Siti", "Ayu", "Maricel",
    # African
    "Amara", "Chiamaka", "Ngozi", "Adaeze", "Zainab", "Abena", "Akosua", "Wanjiru", "Nia", "Thandiwe",
    "Nomvula", "Zodwa", "Makeda", "Hiwot",
    # Americas, Pacific
    "Aiyana", "Itzel", "Ximena", "Guadalupe", "Luana", "Leilani", "Moana",
]

MALE_FIRST_NAMES = [
    # English, Irish, Scottish, Welsh
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Thomas", "Charles", "George",
    "Oliver", "Harry", "Jack", "Noah", "Leo", "Oscar", "Arthur", "Henry", "Samuel", "Daniel",
    "Liam", "Sean", "Cian", "Declan", "Ewan", "Callum", "Rhys", "Dylan",
    # Spanish, Portuguese, Italian, French
    "José", "Juan", "Carlos", "Javier", "Alejandro", "Diego", "Mateo", "Santiago", "João", "Tiago",
    "Marco", "Luca", "Giovanni", "Matteo", "Alessandro", "Lorenzo", "Louis", "Hugo", "Théo", "Étienne",
    "Antoine", "Julien",
    # German, Dutch, Nordic
    "Lukas", "Felix", "Maximilian", "Jonas", "Matthias", "Jan", "Sven", "Bram", "Daan", "Lars",
    "Erik", "Magnus", "Nils", "Oskar",
    # Slavic, Baltic, Greek, Hungarian
    "Piotr", "Tomasz", "Jakub", "Pavel", "Dmitri", "Sergei", "Ivan", "Nikola", "Marko", "Andrius",
    "Giorgos", "Nikos", "Dimitris", "Bence", "Levente",
    # Arabic, Persian, Turkish, Hebrew
    "Mohammed", "Ahmed", "Omar", "Ali", "Youssef", "Karim", "Hassan", "Reza", "Dariush", "Mehmet",
    "Emre", "Mustafa", "Yosef", "Eitan", "Ariel",
    # South Asian
    "Arjun", "Rahul", "Vikram", "Sanjay", "Rohan", "Aarav", "Imran", "Farhan", "Ravi", "Anil",
    # East and Southeast Asian
    "Wei", "Jun", "Hao", "Ming", "Jian", "Hiroshi", "Takeshi", "Kenji", "Haruto", "Min-jun",
    "Ji-hoon", "Seo-jun", "Minh", "Huy", "Duc", "Budi", "Rizal", "Jose Miguel",
    # African
    "Kwame", "Kofi", "Chinedu", "Emeka", "Oluwaseun", "Tunde", "Babajide", "Jabari", "Baraka", "Sipho",
    "Thabo", "Tendai", "Abebe", "Dawit",
    # Americas, Pacific
    "Tupac", "Kai", "Keanu", "Manaia", "Rangi",
]

LAST_NAMES = [
    # English, Irish, Scottish, Welsh
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor", "Anderson",
    "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker",
    "Hall", "Young", "King", "Wright", "Green", "Baker", "Adams", "Turner", "Parker", "Cooper",
    "Murphy", "Kelly", "O'Brien", "O'Connor", "Byrne", "Ryan", "Walsh", "MacDonald", "Campbell", "Stewart",
    "Robertson", "Evans", "Hughes", "Morgan", "Griffiths", "Price",
    # Spanish, Portuguese, Italian, French
    "García", "Rodríguez", "Martínez", "Hernández", "López", "González", "Pérez", "Sánchez", "Ramírez", "Torres",
    "Flores", "Rivera", "Gómez", "Díaz", "Morales", "Ortiz", "Castillo", "Silva", "Santos", "Oliveira",
    "Pereira", "Costa", "Ferreira", "da Silva", "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano",
    "Colombo", "Ricci", "Bruno", "Conti", "Dubois", "Durand", "Lefèvre", "Moreau", "Laurent", "Girard",
    "Bernard", "Petit", "Fontaine",
    # German, Dutch, Nordic
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann", "Schulz",
    "de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit", "Hansen", "Johansson",
    "Andersson", "Nilsson", "Larsen", "Eriksson", "Lindqvist", "Virtanen", "Korhonen",
    # Slavic, Baltic, Greek, Hungarian
    "Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Novák", "Svoboda", "Ivanov", "Petrov", "Smirnov", "Volkov",
    "Horvat", "Kovačević", "Jovanović", "Popescu", "Kazlauskas", "Papadopoulos", "Georgiou", "Nagy", "Kovács",
    "Tóth",
    # Arabic, Persian, Turkish, Hebrew
    "Haddad", "Khalil", "Hassan", "Mansour", "Nasser", "Farouk", "Abdullah", "Saleh", "Al-Masri", "Hosseini",
    "Mohammadi", "Rahimi", "Karimi", "Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Öztürk", "Cohen",
    "Levi", "Mizrahi", "Friedman",
    # South Asian
    "Patel", "Sharma", "Singh", "Kumar", "Gupta", "Reddy", "Iyer", "Nair", "Chatterjee", "Banerjee",
    "Mehta", "Joshi", "Khan", "Hussain", "Chaudhry", "Rahman", "Perera", "Fernando",
    # East and Southeast Asian
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou",
    "Lin", "Tan", "Lim", "Ng", "Wong", "Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe",
    "Kim", "Lee", "Park", "Choi", "Jung", "Nguyễn", "Trần", "Lê", "Phạm", "Santoso",
    "Wijaya", "Reyes", "Cruz", "Bautista", "Dela Cruz",
    # African
    "Okafor", "Okonkwo", "Adeyemi", "Oyelaran", "Mensah", "Owusu", "Boateng", "Kamau", "Otieno", "Mwangi",
    "Ndlovu", "Dlamini", "Nkosi", "Mokoena", "Tesfaye", "Bekele", "Diallo", "Traoré", "Keita", "Ba",
    # Americas, Pacific
    "Yazzie", "Begay", "Quispe", "Mamani", "Kealoha", "Tuilagi",
]
# fmt: on

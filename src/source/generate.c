/* Deterministic randomuser.me-shaped records (see generate.h). Each record draws from its own splitmix64 stream keyed
 * by (seed, index), so records are independent of each other and of the order they are made in. The tables are small
 * but realistic per nationality (names, cities, states, street names, phone, postcode and national-id formats), and
 * keep randomuser's quirks that a mapping has to cope with: postcode is a number for some countries and a string for
 * others, id.value is null for some, names contain UTF-8. Hashes (md5/sha1/sha256) are random hex of the right length,
 * not digests of the password: nothing downstream may rely on them, and computing them would triple the cost. */
#include "source/generate.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/record.h"

struct rng {
	uint64_t s;
};

static inline uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t next64(struct rng *r)
{
	r->s += 0x9e3779b97f4a7c15ULL;
	return mix64(r->s);
}

/* Uniform in [0, n) (Lemire's multiply-shift; the bias for our n < 2^16 is below 2^-16 and irrelevant here). */
static inline uint32_t below(struct rng *r, uint32_t n)
{
	return (uint32_t)(((next64(r) >> 32) * (uint64_t)n) >> 32);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define PICK(r, a) ((a)[below(r, (uint32_t)N(a))])

struct nat {
	const char *code, *country;
	const char *male[8], *female[8], *last[8];
	const char *cities[6], *states[6], *streets[6];
	const char *phone, *cell;   /* '#' = digit */
	const char *postcode;       /* '#' digit, 'A' letter; NULL: a number of postcode_digits digits */
	int postcode_digits;
	const char *id_name, *id_fmt; /* id_fmt NULL: value is null, as randomuser gives for some countries */
};

static const struct nat nats[] = {
	{"US", "United States",
	 {"James", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Brandon"},
	 {"Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica"},
	 {"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis"},
	 {"Austin", "Denver", "Seattle", "Boston", "Phoenix", "Portland"},
	 {"Texas", "Colorado", "Washington", "Massachusetts", "Arizona", "Oregon"},
	 {"Main St", "Oak Lawn Ave", "Pecan Acres Ln", "Hickory Creek Dr", "Lakeview St", "Samaritan Dr"},
	 "(###) ###-####", "(###) ###-####", NULL, 5, "SSN", "###-##-####"},
	{"GB", "United Kingdom",
	 {"Oliver", "Harry", "George", "Jack", "Charlie", "Thomas", "Oscar", "William"},
	 {"Olivia", "Amelia", "Isla", "Ava", "Emily", "Sophie", "Grace", "Lily"},
	 {"Taylor", "Davies", "Evans", "Thomas", "Roberts", "Walker", "Wright", "Robinson"},
	 {"Manchester", "Bristol", "Leeds", "Sheffield", "Cardiff", "Edinburgh"},
	 {"Greater Manchester", "Avon", "West Yorkshire", "South Yorkshire", "South Glamorgan", "Lothian"},
	 {"High Street", "Station Road", "Church Lane", "Park Road", "Victoria Road", "Mill Lane"},
	 "0#### ######", "07### ######", "AA# #AA", 0, "NINO", "AA ## ## ## A"},
	{"AU", "Australia",
	 {"Jack", "Noah", "Lucas", "Cooper", "Riley", "Liam", "Mason", "Ethan"},
	 {"Charlotte", "Mia", "Chloe", "Zoe", "Ruby", "Matilda", "Ella", "Harper"},
	 {"Wilson", "Martin", "Anderson", "White", "Thompson", "Kelly", "Ryan", "Clarke"},
	 {"Sydney", "Melbourne", "Brisbane", "Perth", "Adelaide", "Hobart"},
	 {"New South Wales", "Victoria", "Queensland", "Western Australia", "South Australia", "Tasmania"},
	 {"George St", "Dalhousie Ave", "Paddock Way", "Mockingbird Ln", "Karen Dr", "Hunters Creek Dr"},
	 "0#-####-####", "04##-###-###", NULL, 4, "TFN", NULL},
	{"CA", "Canada",
	 {"Liam", "Logan", "Benjamin", "Nathan", "Felix", "Samuel", "Justin", "Owen"},
	 {"Emma", "Florence", "Alice", "Léa", "Chloé", "Rosalie", "Maëlle", "Juliette"},
	 {"Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier", "Morin", "Lavoie"},
	 {"Toronto", "Montréal", "Vancouver", "Calgary", "Ottawa", "Halifax"},
	 {"Ontario", "Québec", "British Columbia", "Alberta", "Ontario", "Nova Scotia"},
	 {"King St", "Queen St", "Parliament St", "Dundas Rd", "Maple Ave", "Duke St"},
	 "A##-###-####", "B##-###-####", "A#A #A#", 0, "SIN", "### ### ###"},
	{"DE", "Germany",
	 {"Lukas", "Jonas", "Felix", "Maximilian", "Jürgen", "Leon", "Paul", "Tobias"},
	 {"Hannah", "Lea", "Anna", "Jana", "Sophie", "Jülide", "Marie", "Lena"},
	 {"Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker"},
	 {"Berlin", "Hamburg", "München", "Köln", "Leipzig", "Dresden"},
	 {"Berlin", "Hamburg", "Bayern", "Nordrhein-Westfalen", "Sachsen", "Sachsen"},
	 {"Hauptstraße", "Schulstraße", "Gartenstraße", "Bahnhofstraße", "Dorfstraße", "Lindenstraße"},
	 "0###-#######", "017#-#######", NULL, 5, "SVNR", "## ###### A ###"},
	{"FR", "France",
	 {"Louis", "Gabriel", "Raphaël", "Arthur", "Hugo", "Théo", "Nathan", "Mathis"},
	 {"Camille", "Inès", "Jade", "Louise", "Manon", "Élise", "Anaïs", "Margaux"},
	 {"Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Lefèbvre"},
	 {"Paris", "Lyon", "Marseille", "Toulouse", "Nantes", "Strasbourg"},
	 {"Paris", "Rhône", "Bouches-du-Rhône", "Haute-Garonne", "Loire-Atlantique", "Bas-Rhin"},
	 {"Rue de la Mairie", "Rue Principale", "Place du 8 Février 1962", "Rue Pasteur", "Avenue Jean-Jaurès",
	  "Rue des Écoles"},
	 "0#-##-##-##-##", "06-##-##-##-##", NULL, 5, "INSEE", "1######## ##"},
	{"ES", "Spain",
	 {"Hugo", "Martín", "Lucas", "Mateo", "Leo", "Daniel", "Alejandro", "Pablo"},
	 {"Lucía", "Sofía", "Martina", "María", "Julia", "Paula", "Valeria", "Emma"},
	 {"García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez"},
	 {"Madrid", "Barcelona", "Valencia", "Sevilla", "Zaragoza", "Málaga"},
	 {"Comunidad de Madrid", "Cataluña", "Comunidad Valenciana", "Andalucía", "Aragón", "Andalucía"},
	 {"Calle de Alcalá", "Avenida de América", "Calle Mayor", "Paseo de Extremadura", "Calle de Toledo",
	  "Calle del Barquillo"},
	 "9##-###-###", "6##-###-###", NULL, 5, "DNI", "########-A"},
	{"BR", "Brazil",
	 {"Miguel", "Arthur", "Davi", "Heitor", "Bernardo", "Théo", "Gael", "Ravi"},
	 {"Helena", "Alice", "Laura", "Valentina", "Heloísa", "Cecília", "Maitê", "Lívia"},
	 {"Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira"},
	 {"São Paulo", "Rio de Janeiro", "Belo Horizonte", "Salvador", "Fortaleza", "Curitiba"},
	 {"São Paulo", "Rio de Janeiro", "Minas Gerais", "Bahia", "Ceará", "Paraná"},
	 {"Rua Um", "Rua São Paulo", "Rua Santa Luzia", "Rua Principal", "Rua Dois", "Rua Quinze de Novembro"},
	 "(##) ####-####", "(##) #####-####", NULL, 5, "CPF", "###.###.###-##"},
	{"NL", "Netherlands",
	 {"Daan", "Sem", "Lucas", "Levi", "Finn", "Milan", "Bram", "Jesse"},
	 {"Emma", "Julia", "Mila", "Tess", "Sophie", "Zoë", "Sara", "Noor"},
	 {"de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Visser", "Smit"},
	 {"Amsterdam", "Rotterdam", "Utrecht", "Eindhoven", "Groningen", "Tilburg"},
	 {"Noord-Holland", "Zuid-Holland", "Utrecht", "Noord-Brabant", "Groningen", "Noord-Brabant"},
	 {"Kerkstraat", "Schoolstraat", "Molenweg", "Dorpsstraat", "Stationsweg", "Julianastraat"},
	 "(0###) ######", "(06) ########", "#### AA", 0, "BSN", "########"},
	{"TR", "Turkey",
	 {"Ömer", "Yusuf", "Mustafa", "Emir", "Kerem", "Eymen", "Alparslan", "Çınar"},
	 {"Zeynep", "Elif", "Defne", "Eylül", "Azra", "Çağla", "Öykü", "Ecrin"},
	 {"Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Öztürk", "Aydın"},
	 {"İstanbul", "Ankara", "İzmir", "Bursa", "Antalya", "Konya"},
	 {"İstanbul", "Ankara", "İzmir", "Bursa", "Antalya", "Konya"},
	 {"Atatürk Sk", "Vatan Cd", "Talak Göktepe Cd", "Fatih Sultan Mehmet Cd", "Istiklal Cd", "Anafartalar Cd"},
	 "(###)-###-####", "(###)-###-####", NULL, 5, "", NULL},
};

static const struct { const char *offset, *desc; } tzs[] = {
	{"-12:00", "Eniwetok, Kwajalein"}, {"-10:00", "Hawaii"}, {"-9:00", "Alaska"},
	{"-8:00", "Pacific Time (US & Canada)"}, {"-7:00", "Mountain Time (US & Canada)"},
	{"-6:00", "Central Time (US & Canada), Mexico City"}, {"-5:00", "Eastern Time (US & Canada), Bogota, Lima"},
	{"-3:30", "Newfoundland"}, {"-3:00", "Brazil, Buenos Aires, Georgetown"}, {"-1:00", "Azores, Cape Verde Islands"},
	{"0:00", "Western Europe Time, London, Lisbon, Casablanca"}, {"+1:00", "Brussels, Copenhagen, Madrid, Paris"},
	{"+2:00", "Kaliningrad, South Africa"}, {"+3:00", "Baghdad, Riyadh, Moscow, St. Petersburg"},
	{"+3:30", "Tehran"}, {"+4:00", "Abu Dhabi, Muscat, Baku, Tbilisi"}, {"+5:30", "Bombay, Calcutta, Madras, New Delhi"},
	{"+5:45", "Kathmandu"}, {"+7:00", "Bangkok, Hanoi, Jakarta"}, {"+8:00", "Beijing, Perth, Singapore, Hong Kong"},
	{"+9:00", "Tokyo, Seoul, Osaka, Sapporo, Yakutsk"}, {"+9:30", "Adelaide, Darwin"},
	{"+10:00", "Eastern Australia, Guam, Vladivostok"}, {"+12:00", "Auckland, Wellington, Fiji, Kamchatka"},
};

static const char *const adjectives[] = {"purple", "silver", "golden", "crazy", "happy", "lazy", "tiny", "heavy",
					 "angry", "sad", "blue", "red", "brown", "black", "orange", "green"};
static const char *const animals[] = {"lion", "tiger", "bear", "wolf", "rabbit", "duck", "fish", "cat",
				      "dog", "bird", "swan", "leopard", "koala", "gorilla", "elephant", "peacock"};
static const char *const passwords[] = {"shadow", "sunshine", "dragon", "monkey", "football", "qwerty", "letmein",
					"master", "hunter", "freedom", "whatever", "trustno1", "bigdog", "pepper",
					"stars", "blazer"};

static void put_digits(struct sl_buf *b, struct rng *r, int n)
{
	char *d = sl_buf_reserve(b, (size_t)n);
	if (!d)
		return;
	for (int i = 0; i < n; i++)
		d[i] = (char)('0' + below(r, 10));
	b->len += (size_t)n;
}

/* '#' -> digit, 'A' -> capital letter, anything else copied. */
static void put_pattern(struct sl_buf *b, struct rng *r, const char *pat)
{
	size_t n = strlen(pat);
	char *d = sl_buf_reserve(b, n);
	if (!d)
		return;
	for (size_t i = 0; i < n; i++)
		d[i] = pat[i] == '#' ? (char)('0' + below(r, 10)) : pat[i] == 'A' ? (char)('A' + below(r, 26)) : pat[i];
	b->len += n;
}

static void put_hex(struct sl_buf *b, struct rng *r, int n)
{
	static const char hx[] = "0123456789abcdef";
	char *d = sl_buf_reserve(b, (size_t)n);
	if (!d)
		return;
	uint64_t x = 0;
	for (int i = 0; i < n; i++) {
		if (i % 16 == 0)
			x = next64(r);
		d[i] = hx[x & 15];
		x >>= 4;
	}
	b->len += (size_t)n;
}

/* Lowercase ASCII letters, drop spaces; UTF-8 bytes pass through (randomuser's emails keep them too). */
static void put_lower(struct sl_buf *b, const char *s)
{
	for (; *s; s++)
		if (*s != ' ')
			sl_buf_putc(b, (*s >= 'A' && *s <= 'Z') ? (char)(*s + 32) : *s);
}

static void put_date_age(struct sl_buf *b, struct rng *r, int64_t from_ms, int64_t to_ms)
{
	int64_t ms = from_ms + (int64_t)(next64(r) % (uint64_t)(to_ms - from_ms));
	char ts[SL_TIMESTAMP_STR_MAX];
	sl_timestamp_format(ms, ts);
	int64_t y, ry;
	unsigned m, d, rm, rd;
	sl_date_civil_from_days(sl_days_from_ms(ms), &y, &m, &d);
	sl_date_civil_from_days(sl_days_from_ms(SL_GENERATE_REF_MS), &ry, &rm, &rd);
	int64_t age = ry - y - ((rm < m || (rm == m && rd < d)) ? 1 : 0);
	sl_buf_printf(b, "{\"date\":\"%s\",\"age\":%lld}", ts, (long long)age);
}

int sl_generate_record(uint64_t seed, uint64_t index, struct sl_buf *out)
{
	struct rng r = {mix64(seed ^ 0x5bd1e9955bd1e995ULL) ^ mix64(index + 0x632be59bd9b4e019ULL)};
	const struct nat *n = &nats[below(&r, (uint32_t)N(nats))];
	bool male = below(&r, 2) == 0;
	const char *first = male ? PICK(&r, n->male) : PICK(&r, n->female);
	const char *last = PICK(&r, n->last);
	static const char *const ftitles[] = {"Ms", "Mrs", "Miss", "Ms"};
	const char *title = male ? "Mr" : PICK(&r, ftitles);
	unsigned city = below(&r, 6);

	sl_buf_puts(out, male ? "{\"gender\":\"male\",\"name\":{\"title\":\"" : "{\"gender\":\"female\",\"name\":{\"title\":\"");
	sl_buf_puts(out, title);
	sl_buf_puts(out, "\",\"first\":");
	sl_buf_json_str(out, first, strlen(first));
	sl_buf_puts(out, ",\"last\":");
	sl_buf_json_str(out, last, strlen(last));
	sl_buf_printf(out, "},\"location\":{\"street\":{\"number\":%u,\"name\":", 1 + below(&r, 9999));
	const char *street = PICK(&r, n->streets);
	sl_buf_json_str(out, street, strlen(street));
	sl_buf_puts(out, "},\"city\":");
	sl_buf_json_str(out, n->cities[city], strlen(n->cities[city]));
	sl_buf_puts(out, ",\"state\":");
	sl_buf_json_str(out, n->states[city], strlen(n->states[city]));
	sl_buf_puts(out, ",\"country\":");
	sl_buf_json_str(out, n->country, strlen(n->country));
	sl_buf_puts(out, ",\"postcode\":");
	if (n->postcode) {
		sl_buf_putc(out, '"');
		put_pattern(out, &r, n->postcode);
		sl_buf_putc(out, '"');
	} else {
		/* A number, so no leading zero (randomuser's numeric postcodes have none either). */
		sl_buf_putc(out, (char)('1' + below(&r, 9)));
		put_digits(out, &r, n->postcode_digits - 1);
	}
	int lat = (int)below(&r, 1800001) - 900000, lon = (int)below(&r, 3600001) - 1800000;
	sl_buf_printf(out, ",\"coordinates\":{\"latitude\":\"%s%d.%04d\",\"longitude\":\"%s%d.%04d\"}",
		      lat < 0 ? "-" : "", (lat < 0 ? -lat : lat) / 10000, (lat < 0 ? -lat : lat) % 10000,
		      lon < 0 ? "-" : "", (lon < 0 ? -lon : lon) / 10000, (lon < 0 ? -lon : lon) % 10000);
	unsigned tz = below(&r, (uint32_t)N(tzs));
	sl_buf_printf(out, ",\"timezone\":{\"offset\":\"%s\",\"description\":\"%s\"}},\"email\":\"", tzs[tz].offset,
		      tzs[tz].desc);
	put_lower(out, first);
	sl_buf_putc(out, '.');
	put_lower(out, last);
	sl_buf_puts(out, "@example.com\",\"login\":{\"uuid\":\"");
	uint8_t u[16];
	uint64_t hi = next64(&r), lo = next64(&r);
	sl_uuid_v4_from_random(hi, lo, u);
	char us[SL_UUID_STR_LEN + 1];
	sl_uuid_format(u, us);
	sl_buf_append(out, us, SL_UUID_STR_LEN);
	sl_buf_puts(out, "\",\"username\":\"");
	sl_buf_puts(out, PICK(&r, adjectives));
	sl_buf_puts(out, PICK(&r, animals));
	sl_buf_printf(out, "%u", 100 + below(&r, 900));
	sl_buf_puts(out, "\",\"password\":\"");
	sl_buf_puts(out, PICK(&r, passwords));
	sl_buf_puts(out, "\",\"salt\":\"");
	static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	for (int i = 0; i < 8; i++)
		sl_buf_putc(out, alnum[below(&r, 62)]);
	sl_buf_puts(out, "\",\"md5\":\"");
	put_hex(out, &r, 32);
	sl_buf_puts(out, "\",\"sha1\":\"");
	put_hex(out, &r, 40);
	sl_buf_puts(out, "\",\"sha256\":\"");
	put_hex(out, &r, 64);
	sl_buf_puts(out, "\"},\"dob\":");
	/* 1944-01-01 .. 2004-01-01 and 2002-01-01 .. 2022-12-31, randomuser's ranges. */
	put_date_age(out, &r, -820454400000LL, 1072915200000LL);
	sl_buf_puts(out, ",\"registered\":");
	put_date_age(out, &r, 1009843200000LL, 1672444800000LL);
	sl_buf_puts(out, ",\"phone\":\"");
	put_pattern(out, &r, n->phone);
	sl_buf_puts(out, "\",\"cell\":\"");
	put_pattern(out, &r, n->cell);
	sl_buf_puts(out, "\",\"id\":{\"name\":\"");
	sl_buf_puts(out, n->id_name);
	sl_buf_puts(out, "\",\"value\":");
	if (n->id_fmt) {
		sl_buf_putc(out, '"');
		put_pattern(out, &r, n->id_fmt);
		sl_buf_putc(out, '"');
	} else
		sl_buf_puts(out, "null");
	const char *who = male ? "men" : "women";
	unsigned pic = below(&r, 100);
	sl_buf_printf(out,
		      "},\"picture\":{\"large\":\"https://randomuser.me/api/portraits/%s/%u.jpg\","
		      "\"medium\":\"https://randomuser.me/api/portraits/med/%s/%u.jpg\","
		      "\"thumbnail\":\"https://randomuser.me/api/portraits/thumb/%s/%u.jpg\"},\"nat\":\"%s\"}",
		      who, pic, who, pic, who, pic, n->code);
	return sl_buf_ok(out) ? 0 : SL_ENOMEM;
}

int sl_generate_page(uint64_t seed, uint64_t first_index, uint32_t count, struct sl_buf *out)
{
	sl_buf_puts(out, "{\"results\":[");
	for (uint32_t i = 0; i < count; i++) {
		if (i)
			sl_buf_putc(out, ',');
		sl_generate_record(seed, first_index + i, out);
	}
	sl_buf_printf(out, "],\"info\":{\"seed\":\"%016llx\",\"results\":%u,\"page\":%llu,\"version\":\"1.4\"}}",
		      (unsigned long long)seed, count,
		      (unsigned long long)(count ? first_index / count + 1 : 1));
	return sl_buf_ok(out) ? 0 : SL_ENOMEM;
}

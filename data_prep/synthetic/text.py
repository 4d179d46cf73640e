"""A deterministic English sentence generator that needs no downloaded text.

Sentences come from a small clause grammar over embedded word lists. Nouns,
verbs and adjectives are inflected by rule (plurals, third person, past tense,
-ing, comparatives, -ly adverbs), and surnames are composed from syllables, so
the vocabulary holds several thousand distinct word forms (``vocabulary()``).

Example
-------
>>> import numpy as np
>>> gen = SentenceGenerator(np.random.default_rng(0))
>>> words = gen.sentence(n_words=12).split()
>>> len(words) >= 12 and all(w.isupper() for w in words)
True
>>> len(vocabulary()) > 3000
True
"""
import re

import numpy as np

from .ids import pick

NOUNS = """
time year people way day man thing woman life child world school state family
student group country problem hand part place case week company system program
question work government number night point home water room mother area money
story fact month lot right study book eye job word business issue side kind head
house service friend father power hour game line end member law car city name
president team minute idea kid body information back parent face others level
office door health person art war history party result change morning reason
research girl guy moment air teacher force education foot boy age policy process
music market sense nation plan college interest death experience effect class
control care field development role effort rate heart drug show leader light
voice wife police mind price report decision son view relationship town road arm
difference value building action model season society tax director position
player record paper space ground form event official matter center couple site
project activity star table need court oil situation cost industry figure street
image phone data picture practice piece land product doctor wall patient worker
news test movie north love support technology step baby computer type attention
film tree source organization hair window evidence population truth song
economy river garden horse bird flower mountain island forest ocean village
castle bridge kitchen letter ship captain soldier king queen prince princess
church bell clock candle apple bread cheese coffee dinner breakfast lunch supper
bottle glass plate basket box chair bed blanket pillow shoe coat hat dress shirt
pocket ring stone rock hill valley lake pond stream meadow field farm barn cow
sheep pig goat dog cat mouse rabbit fox wolf bear deer lion tiger elephant
monkey snake fish whale eagle owl crow duck goose chicken egg milk butter sugar
salt pepper honey cake pie soup meat rice corn wheat grass leaf branch root seed
fruit berry orange lemon grape potato carrot onion bean nut winter summer spring
autumn weather rain snow wind storm cloud sky sun moon planet earth fire smoke
ice shadow dream memory thought feeling hope fear anger joy sorrow pleasure pain
silence noise sound whisper cry laugh smile tear kiss hug journey voyage
adventure path gate fence yard wagon cart wheel engine train station ticket
map compass lamp lantern mirror picture painting portrait statue museum library
theater concert dance song poem novel chapter page sentence language lesson
teacher pupil scholar professor lawyer judge merchant sailor farmer hunter
fisherman baker butcher tailor carpenter blacksmith miller shepherd servant
master guest stranger neighbor cousin uncle aunt nephew niece brother sister
daughter grandmother grandfather husband bride widow orphan crowd army
battle enemy victory treasure gold silver iron copper coin purse wallet debt
promise secret mystery puzzle answer riddle clue letter envelope stamp
newspaper magazine pencil pen ink desk drawer shelf cupboard closet carpet
curtain ceiling floor roof chimney stair corner hall tower palace cottage
hut tent camp harbor shore beach wave tide sand cliff cave desert jungle
swamp canyon prairie valley mill factory shop store bank hotel restaurant
market tavern inn prison hospital school university temple chapel garden
orchard vineyard pasture stable kennel nest hive web shell feather claw tail
wing horn hoof paw fur skin bone blood heart brain finger thumb knee elbow
shoulder neck chin cheek lip tongue tooth nose ear forehead eyebrow
""".split()

VERBS = """
walk talk look open close start finish call answer ask help play work live move
turn travel climb carry wish wait watch listen learn jump laugh smile cry shout
follow reach pull push want need like love hate hope dream visit paint cook
clean wash fill pass enter explain remember discover return receive notice
promise order offer count change decide describe prepare argue share touch
kick knock guard guide gather hurry invite join kill pick plant pray print rest
rescue roll save serve sign smell stay step stop suggest thank trust try use
wander wonder yell warn whistle fold fix dress dance cover borrow bake attack
admire allow appear arrive belong boil burn check chase collect complain
deliver destroy dislike earn escape expect explore fail fear float form guess
hang happen hunt imagine improve inform kiss land last lift manage mark marry
measure melt miss nod obey own pause place plan point pour pretend protect
punish question race reply report rush scream search shiver slip sneeze spell
spill spoil stare study supply surprise test tie touch trap tremble trouble
unlock vanish wave whisper
""".split()

# Irregular verbs: base, past.
IRREGULAR = dict(pair.split(":") for pair in """
be:was have:had do:did say:said go:went get:got make:made know:knew think:thought
take:took see:saw come:came give:gave find:found tell:told become:became leave:left
feel:felt bring:brought begin:began keep:kept hold:held write:wrote stand:stood
hear:heard let:let mean:meant set:set meet:met run:ran pay:paid sit:sat speak:spoke
lie:lay lead:led read:read grow:grew lose:lost fall:fell send:sent build:built
understand:understood draw:drew break:broke spend:spent cut:cut rise:rose
drive:drove buy:bought wear:wore choose:chose seek:sought throw:threw catch:caught
deal:dealt win:won forget:forgot sell:sold fight:fought sing:sang swim:swam
ride:rode hide:hid shake:shook sleep:slept eat:ate drink:drank fly:flew
steal:stole teach:taught wake:woke weep:wept bite:bit blow:blew dig:dug feed:fed
forgive:forgave freeze:froze hang:hung sink:sank sweep:swept swing:swung tear:tore
""".split())

ADJECTIVES = """
good new first last long great little own other old right big high different
small large next early young important few public bad same able dark light
bright quiet loud soft hard warm cold hot cool wet dry clean dirty rich poor
happy sad angry calm brave proud gentle kind cruel wise foolish clever simple
strange curious famous honest humble lonely lovely pretty ugly beautiful handsome
tall short thin thick wide narrow deep shallow heavy empty full fresh ancient
modern golden silver wooden stone narrow broad smooth rough sharp dull sweet
sour bitter salty green blue red yellow white black brown gray purple pink
silent noisy busy lazy eager anxious careful careless faithful gloomy cheerful
polite rude strong weak sick healthy hungry thirsty tired sleepy wild tame
fierce nervous patient eager distant near hidden secret sudden slow quick swift
rapid steady ready rare common plain fancy grand tiny huge vast narrow pale
""".split()

ADVERBS = """
quickly slowly quietly loudly softly gently suddenly finally always never often
sometimes rarely seldom soon later again together alone almost nearly already
still perhaps indeed certainly surely truly really early today tonight
yesterday tomorrow here there everywhere somewhere away abroad home
""".split()

GIVEN_NAMES = """
john mary james anna robert emma william alice thomas clara henry margaret george
elizabeth edward helen charles jane arthur lucy walter grace frank rose harold
ruth albert ellen samuel martha joseph sarah daniel laura peter emily david
julia richard kate michael agnes paul edith hugh amy oliver nora simon maud
""".split()

SURNAME_PARTS = (
    "ash bel cor dal el fen gar hal ing jor kel lan mor nor ol pen quin ros sel tor"
).split(), ("by ford ton well wood field man ley more ham dale stone son wick ridge").split()

DETERMINERS = "the a an this that every some one his her their our my".split()
SINGULAR_DETERMINERS = [d for d in DETERMINERS if d != "an"]  # "an" comes from the a/an rule
PLURAL_DETERMINERS = "the these those some many few several two three their our".split()
PREPOSITIONS = "in on under over near behind beside across through into from toward with without beyond".split()
CONJUNCTIONS = "and but so because while although when until before after".split()
PRONOUNS = "he she they we i you it".split()
RELATIVE = "which that who".split()

CONTRACTIONS = "didn't couldn't wasn't isn't don't wouldn't can't won't".split()

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve "
         "thirteen fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_to_words(n):
    """Spell a non-negative integer below one million in English words.

    >>> number_to_words(342)
    'three hundred forty two'
    """
    n = int(n)
    if not 0 <= n < 1_000_000:
        raise ValueError(f"number_to_words expects 0 <= n < 1000000, got {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = "" if n % 100 == 0 else " " + number_to_words(n % 100)
        return _ONES[n // 100] + " hundred" + rest
    rest = "" if n % 1000 == 0 else " " + number_to_words(n % 1000)
    return number_to_words(n // 1000) + " thousand" + rest


def plural(noun):
    if re.search(r"(s|x|z|ch|sh)$", noun):
        return noun + "es"
    if re.search(r"[^aeiou]y$", noun):
        return noun[:-1] + "ies"
    irregular = {"man": "men", "woman": "women", "child": "children",
                 "foot": "feet", "tooth": "teeth", "mouse": "mice",
                 "goose": "geese", "person": "people", "leaf": "leaves",
                 "wolf": "wolves", "knife": "knives", "sheep": "sheep",
                 "fish": "fish", "deer": "deer", "shelf": "shelves",
                 "thief": "thieves", "life": "lives", "wife": "wives"}
    return irregular.get(noun, noun + "s")


# Two-syllable verbs stressed on the last syllable double it too (forgetting).
_STRESSED_FINAL = {"forget", "begin", "admit", "occur", "prefer", "refer", "permit"}


def _double_final(verb):
    return verb in _STRESSED_FINAL or (
        len(re.findall(r"[aeiou]+", verb)) == 1  # one syllable
        and re.search(r"[^aeiou][aeiou][bdgmnprt]$", verb)
        and not verb.endswith(("w", "x", "y")))


def past(verb):
    if verb in IRREGULAR:
        return IRREGULAR[verb]
    if verb.endswith("e"):
        return verb + "d"
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "ied"
    if _double_final(verb):
        return verb + verb[-1] + "ed"
    return verb + "ed"


def third_person(verb):
    special = {"be": "is", "have": "has", "do": "does", "go": "goes"}
    if verb in special:
        return special[verb]
    return plural(verb) if not verb.endswith("y") or re.search(r"[aeiou]y$", verb) \
        else verb[:-1] + "ies"


def gerund(verb):
    if verb in ("be", "see", "flee", "agree"):
        return verb + "ing"
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith("ee"):
        return verb[:-1] + "ing"
    if _double_final(verb):
        return verb + verb[-1] + "ing"
    return verb + "ing"


def comparative(adj):
    if len(adj) > 6:
        return None
    if adj.endswith("e"):
        return adj + "r"
    if re.search(r"[^aeiou]y$", adj):
        return adj[:-1] + "ier"
    if len(re.findall(r"[aeiou]+", adj)) == 1 and re.search(r"[^aeiou][aeiou][bdgmnpt]$", adj):
        return adj + adj[-1] + "er"
    return adj + "er"


def adverb_of(adj):
    if adj.endswith("le"):
        return adj[:-1] + "y"
    if re.search(r"[^aeiou]y$", adj):
        return adj[:-1] + "ily"
    if adj.endswith("ic"):
        return adj + "ally"
    return adj + "ly"


ALL_VERBS = sorted(set(VERBS) | set(IRREGULAR))
ALL_NOUNS = sorted(set(NOUNS))
ALL_ADJECTIVES = sorted(set(ADJECTIVES))
SURNAMES = sorted({a + b for a in SURNAME_PARTS[0] for b in SURNAME_PARTS[1]})


def vocabulary():
    """Every word form the generator can produce, upper-cased, sorted."""
    words = set(DETERMINERS + PLURAL_DETERMINERS + PREPOSITIONS + CONJUNCTIONS
                + PRONOUNS + RELATIVE + CONTRACTIONS + ADVERBS + GIVEN_NAMES
                + SURNAMES + ["was", "were", "is", "are", "very", "than",
                              "not", "to", "of", "said", "had", "been"])
    words.update(name + "'s" for name in GIVEN_NAMES)
    for n in ALL_NOUNS:
        words.update((n, plural(n), n + "'s"))
    for v in ALL_VERBS:
        words.update((v, past(v), third_person(v), gerund(v)))
    for a in ALL_ADJECTIVES:
        words.update((a, adverb_of(a)))
        if comparative(a):
            words.add(comparative(a))
    return sorted(w.upper() for w in words)


class SentenceGenerator:
    """Draws grammatical-looking English sentences from a numpy Generator.

    Arguments
    ---------
    rng : numpy.random.Generator
        The only source of randomness, so a seeded generator gives
        identical text.
    """

    def __init__(self, rng):
        self.rng = rng

    def _pick(self, items):
        return pick(self.rng, items)

    def _chance(self, p):
        return self.rng.random() < p

    def noun_phrase(self):
        r = self.rng.random()
        if r < 0.12:
            return [self._pick(GIVEN_NAMES)]
        if r < 0.18:
            return [self._pick(GIVEN_NAMES), self._pick(SURNAMES)]
        if r < 0.25:
            return [self._pick(GIVEN_NAMES) + "'s", self._pick(ALL_NOUNS)]
        words = []
        many = self._chance(0.3)
        words.append(self._pick(PLURAL_DETERMINERS if many else SINGULAR_DETERMINERS))
        if self._chance(0.45):
            adj = self._pick(ALL_ADJECTIVES)
            if self._chance(0.1) and comparative(adj):
                adj = comparative(adj)
            words.append(adj)
        noun = self._pick(ALL_NOUNS)
        words.append(plural(noun) if many else noun)
        if words[0] == "a" and words[1][0] in "aeiou":
            words[0] = "an"
        return words

    def clause(self):
        subject_is_pronoun = self._chance(0.3)
        words = [self._pick(PRONOUNS)] if subject_is_pronoun else self.noun_phrase()
        verb = self._pick(ALL_VERBS)
        r = self.rng.random()
        if r < 0.5:
            words.append(past(verb))
        elif r < 0.7:
            words += [self._pick(["was", "were"]), gerund(verb)]
        elif r < 0.8:
            words += [self._pick(CONTRACTIONS[:3]), verb]
        else:
            words.append(third_person(verb))
        if self._chance(0.7):
            words += self.noun_phrase()
        if self._chance(0.45):
            words += [self._pick(PREPOSITIONS)] + self.noun_phrase()
        if self._chance(0.2):
            words.append(self._pick(ADVERBS + [adverb_of(self._pick(ALL_ADJECTIVES))]))
        return words

    def sentence(self, n_words=None):
        """One upper-case sentence, without punctuation, of about ``n_words``
        words (a single clause when ``n_words`` is None)."""
        words = self.clause()
        while n_words is not None and len(words) < n_words:
            joiner = self._pick(CONJUNCTIONS + RELATIVE)
            words += [joiner] + self.clause()
        return " ".join(words).upper()

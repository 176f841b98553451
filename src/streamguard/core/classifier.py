"""Purpose classifier: the prohibited or insufficient categories a free-text search reason falls in.

Pure and I/O free. The engine calls :func:`classify` once per search event, so every pattern is
compiled at import, the text is normalised once, and results are cached per distinct text (real
reasons repeat a lot: about 12k distinct strings in 166k logged cells). :func:`explain` gives the
same answer with the rule behind every category and the disguises that were undone to read the
text. docs/classifier.md explains the design, the rules and the measured error rates.

Reading a reason takes three steps:
1. :mod:`streamguard.core.textnorm` folds the characters (NFKC, invisibles, combining marks,
   TR #39 confusables) to lower-case Latin;
2. :mod:`streamguard.core.wordfold` repairs disguised words (leetspeak, split letters, glued
   words, misspellings) against the vocabulary below;
3. the rules below match words in that text. The agency or crime words they need are whole
   words: a pattern never matches inside an ordinary word.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from streamguard.core.textnorm import fold_unicode
from streamguard.core.wordfold import Vocabulary, WordFolder, edit_distance

__all__ = ("CATEGORIES", "Explanation", "Finding", "classify", "explain")

CATEGORIES: tuple[str, ...] = (
    "immigration",
    "health_care",
    "protected_activity",
    "profiling",
    "vague",
    "missing",
)

# Texts longer than this skip the cache: a flood of unique padded reasons must not pin gigabytes.
_CACHE_MAX_TEXT = 4096


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that put a text in a category, and the normalised words it matched."""

    rule: str  # "<category>.<rule>", e.g. "immigration.agency"
    matched: str

    @property
    def category(self) -> str:
        return self.rule.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class Explanation:
    """A classification with its reasons.

    ``categories`` is what :func:`classify` returns. ``findings`` has at least one rule for every
    category, in category order. ``folds`` names the disguises undone before matching (from
    :data:`streamguard.core.textnorm.FOLD_STEPS` and :data:`streamguard.core.wordfold.WORD_STEPS`),
    ``normalized`` the text the rules read.
    """

    categories: tuple[str, ...]
    findings: tuple[Finding, ...]
    folds: tuple[str, ...]
    normalized: str


def _alt(*parts: str) -> str:
    return "(?:" + "|".join(parts) + ")"


def _rules(rules: Mapping[str, Sequence[str]]) -> re.Pattern[str]:
    """One pattern over whole words whose named groups are the rule names."""
    groups = "|".join(f"(?P<{name}>{_alt(*patterns)})" for name, patterns in rules.items())
    return re.compile(r" (?:" + groups + r")(?= )")


def _findings(pattern: re.Pattern[str], text: str, category: str) -> list[Finding]:
    if pattern.search(text) is None:
        return []
    found: dict[str, Finding] = {}
    for match in pattern.finditer(text):
        rule = f"{category}.{match.lastgroup}"
        if rule not in found:
            found[rule] = Finding(rule, match.group(0).strip())
    return list(found.values())


# --- immigration ----------------------------------------------------------------------------------

# The forms of "deport" in English and Spanish. "Deportivo" (a football club), "deportes" (sports)
# and "deportment" are other words.
_DEPORT = (
    r"deport(?:s|ed|ees?|ing|ations?|able|acion(?:es)?|ad[oa]s?|ar(?:on|an|a|lo|la|los|las)?|o)?"
)
# Names of immigration agencies, in the forms logs use. HSI counts although Homeland Security
# Investigations also works drug and child-exploitation cases: it is a directorate of ICE, the
# reason field rarely says which work it is, and every published analysis of these logs (404 Media,
# St. Louis Park, Atlanta Press Collective) counts "HSI" as immigration. A non-immigration HSI case
# is a false positive we accept: it costs a re-justified search, a miss an unlawful disclosure.
_AGENCY = _alt(
    r"ice",
    r"ero",
    r"hsi",
    r"cbp",
    r"usbp",
    r"uscis",
    r"dhs",
    r"homeland security(?: investigations?)?",
    r"(?:dept|department) of homeland security",
    r"b[o]?a?rder ?patrol",
    r"customs and border protection",
    r"customs border protection",
    r"border protection",
    r"immigration(?: and customs enforcement)?",
    r"immigration (?:officers?|agents?|officials?|authorities)",
    r"enforcement and removal operations",
    r"(?:la )?migra",
    r"(?:in)?migracion",
    r"patrulla fronteriza",
)
_DET = (
    r"(?:an?|the|federal|us|local|off duty|plainclothes|uniformed|two|three|several|multiple|"
    r"un|una|los|las|el|la)"
)
_STAFF = (
    r"(?:agents?|officers?|officials?|personnel|employees?|staff|workers?|agentes?|oficial(?:es)?)"
)
_PROPERTY = (
    r"(?:vehicles?|trucks?|cars?|suvs?|vans?|cruisers?|facility|facilities|offices?|buildings?|"
    r"property|headquarters|field office|stations?|detention cent(?:er|re)s?)"
)
_VICTIM_NOUN = _alt(_STAFF, _PROPERTY)
# What an impostor fakes besides the agent: the badge, the call, the warrant.
_FAKED = (
    r"(?:agents?|officers?|officials?|badges?|vests?|uniforms?|raids?|ids?|calls?|callers?|"
    r"letters?|warrants?|documents?|notices?|emails?|texts?)"
)
# Words that say what the agency wants (its hold, its warrant, its request): with one of these
# after it the agency is the one searching, not the victim, whatever crime word came before.
_AGENCY_WORK = (
    r"(?:holds?|detainers?|warrants?|requests?|req|cases?|referrals?|assist\w*|pick ?ups?|"
    r"custody|targets?|operations?|ops?|raids?|sweeps?|enforcement|investigations?|tfo|"
    r"task force|locate|removal|deport\w*|transfer|arrests?)"
)
_CRIME_AGAINST = (
    r"(?:assault\w*|threat\w*|attack\w*|shoot\w*|shots?(?: fired)?|ambush\w*|vandal\w*|arson|"
    r"dox\w*|harass\w*|stalk\w*|kill\w*|murder\w*|battery|bomb\w*|brandish\w*|ramm(?:ed|ing)|"
    r"obstruct\w*|resist\w*|interfer\w*|injur\w*|rob\w*|burglar\w*|thefts?|steal\w*|stole\w*|"
    r"damag\w*|kidnap\w*|spit\w*|punch\w*|graffiti|tagging|sabotag\w*)"
)
_CRIME_DONE_TO = (
    r"(?:assaulting|threatening|attacking|shooting at|ambushing|doxx?ing|harass\w*ing|stalking|"
    r"killing|murdering|bombing|ramming|robbing|injuring|punching|spitting on|targeting)"
)
_VICTIM_PARTICIPLE = (
    r"(?:assaulted|attacked|shot|threatened|vandali[sz]ed|damaged|stolen|burglari[sz]ed|rammed|"
    r"robbed|doxx?ed|harassed|injured|struck|ambushed|targeted|stalked|tagged|burned|"
    r"broken into|keyed|spat on)"
)
_IMPERSONATE = (
    r"(?:impersonat\w*|impostors?|imposters?|(?:posing|poses|pose|posed) as|"
    r"pretend\w*(?: to be)?|claim\w* to be|masquerad\w* as|disguised as|dressed as|"
    r"se hac\w* pasar por|haciendose pasar por|suplantacion de|suplantando a)"
)
_FRAUD_ADJECTIVE = (
    r"(?:fake|false|phony|phoney|bogus|fraudulent|counterfeit|fictitious|sham|imitation|"
    r"impostor|imposter|falsos?|falsas?)"
)
_PROTEST_WORD = (
    r"(?:protest\w*|rally|rallies|demonstrat\w*|march\w*|picket\w*|vigil\w*|manifestaci\w*|"
    r"marcha\w*)"
)
_PROTEST_TARGET = _alt(_AGENCY, r"deportations?", r"raids?", r"immigration court", _DEPORT)

# A crime whose subject or victim merely names the agency ("ICE impersonation fraud", "assault on a
# border patrol agent") is an ordinary criminal case, not immigration work: these spans are removed
# before the agency patterns run. Each needs victim context: an impersonation, a fraud adjective
# right before the agency, a crime word joined to it by "on", "against", "from" or "of", or a crime
# done to its staff or property. A crime word alone is not enough: "burglary ICE warrant" names the
# crime the subject is wanted for and the agency that wants him.
_SUBJECT_SPAN = re.compile(
    r" "
    + _alt(
        # impersonation and hoaxes: the agency is what the suspect pretended to be
        _IMPERSONATE + rf"(?: {_DET})* (?:fake )?{_AGENCY}(?: {_STAFF}| {_FAKED})?",
        _AGENCY + rf"(?: {_STAFF})? (?:impersonat\w*|impostors?|imposters?|scam\w*|hoax\w*|"
        r"imitat\w*|spoof\w*|pretext\w*)",
        rf"{_FRAUD_ADJECTIVE}(?: (?:federal|us))? {_AGENCY}(?: {_FAKED})?",
        rf"(?:{_STAFF}) {_FRAUD_ADJECTIVE} de {_AGENCY}",
        # the agency or its staff as victim of a crime
        _CRIME_AGAINST
        + r"(?: (?:on|against|upon|toward|towards|targeting|at|to|from|of|with|near|outside|"
        r"inside|contra|de|a)(?: "
        + _DET
        + rf")*)+ {_AGENCY}(?: {_VICTIM_NOUN})?(?! {_AGENCY_WORK} )",
        _CRIME_AGAINST + rf"(?: {_DET})* {_AGENCY} {_VICTIM_NOUN}(?! {_AGENCY_WORK} )",
        # "doxxing ICE", "threatening border patrol": a crime done to the agency itself
        rf"{_CRIME_DONE_TO}(?: {_DET})* {_AGENCY}(?: {_VICTIM_NOUN})?(?! {_AGENCY_WORK} )",
        _AGENCY + rf" {_VICTIM_NOUN}(?: (?:was|were|is|got|being|been))? {_VICTIM_PARTICIPLE}",
        # "ICE officer assault", "border patrol truck theft": the crime named after its victim
        _AGENCY + rf" {_VICTIM_NOUN} {_CRIME_AGAINST}(?! {_AGENCY_WORK} )",
    )
    + r"(?= )"
)
# Protests about the agency: the protest is the purpose (PROTECTED_ACTIVITY), not the agency.
_PROTEST_SPAN = re.compile(
    r" "
    + _alt(
        _PROTEST_WORD
        + r"(?: (?:at|against|outside|near|in front of|of|the|an?|local|over|about|contra|frente a"
        r"|de|la|el|por)){1,3} " + _PROTEST_TARGET + r"\w*",
        r"(?:anti|abolish|fuck|no|stop|alto a las?) "
        + _PROTEST_TARGET
        + r"(?: "
        + _PROTEST_WORD
        + ")?",
        _AGENCY + r"(?: out)? " + _PROTEST_WORD,
        _AGENCY + r" watch(?: (?:activists?|groups?|volunteers?|networks?|members?))?",
    )
    + r"(?= )"
)
# Rappers, bands and the like whose names hold an agency or immigration word.
_NAMED_ENTITY = re.compile(
    r" (?:ice (?:t|cube|spice|nine kills)|vanilla ice|iced earth|alien (?:ant farm|weaponry|"
    r"sex fiend))(?= )"
)

_IMMIGRATION = _rules(
    {
        "agency": (
            r"hsi",
            r"cbp",
            r"usbp",
            r"uscis",
            r"eoir",
            r"homeland ?(?:sec\w*|investigations?)",
            r"homelandsec\w*",
            r"(?:dept|department) (?:of )?homeland",
            r"b[o]?a?rder ?patrol\w*",
            r"border protection",
            r"customs (?:and )?border",
            r"enforcement and removal",
            r"bp (?:assist\w*|agents?|requests?|officers?|holds?)",
            r"(?:la )?migra",
            r"patrulla fronteriza",
            r"proteccion fronteriza",
            r"departamento de seguridad nacional",
        ),
        "enforcement_term": (
            r"i[mn]{1,2}[aeiy]?gr[aeiy]?[tc]\w*",  # immigration, imigration, inmigracion
            r"immgr\w*",
            r"immig\w*",
            r"immigation\w*",
            r"imm (?:stat\w*|enf\w*|holds?|cases?|warrants?|violations?|detainers?)",
            r"inmigr\w*",
            r"migracion",
            r"migratori[oa]s?",
            r"migrantes?",
            r"migrants?",
            r"aliens?",
            _DEPORT,
            r"removal (?:orders?|proceedings?|hearings?|warrants?)",
            r"(?:orders?|warrants?|ordenes|orden) (?:of|de) (?:removal|remocion|expulsion)",
            r"(?:expedited|administrative) removal",
            r"expulsion del pais",
            r"undocumented",
            r"indocumentad[oa]s?",
            r"sin papeles",
            r"illegals",
            r"illegal (?:aliens?|immigra\w*|entry|re ?entry|border crossings?|crossings?)",
            r"cruce ilegal",
            r"crossed (?:the )?border illegally",
            r"unlawful(?:ly)? presen\w*",
            r"entered without inspection",
            r"visa overstay\w*",
            r"overstay\w* (?:(?:a|the|his|her|their) )?visas?",
            r"alternatives to detention",
            r"secure communities",
        ),
        "legal_reference": (
            r"8 ?usc\w*",
            r"8 u s c\w*",
            r"title (?:8|viii)",
            r"ina (?:1\d\d|2\d\d)\w*",
            r"287 ?g",
            r"i ?247 ?[a-z]?",
            r"i ?(?:200|203|213|286|862|220 ?[ab]|589|765|130|551|797)",
            r"i ?205 (?:warrant|removal)",
            r"(?:form|uscis|dhs) i ?\d{1,3}[a-z]?",
        ),
        "status_check": (
            r"green cards?",
            r"tarjeta verde",
            r"residencia permanente",
            r"(?:lawful )?permanent residen\w*",
            r"visas? (?:status|check\w*|verification|expired|violations?|holders?|revoked)",
            r"(?:expired|overstayed|student|work|tourist|revoked|invalid) visas?",
            r"visa vencida",
            r"daca",
            r"tps (?:status|holders?|recipients?|verification)",
            r"temporary protected status",
            r"citizenship (?:status|checks?|verification|proof)",
            r"(?:verify|verifying|check|checking|proof of|confirm) (?:us )?citizenship",
            r"non ?citizens?",
            r"not an? (?:us )?citizen",
            r"naturali[sz]ation\w*",
            r"asylees?",
            r"asylum(?! (?:building|hospital|grounds|property|st|street|ave|avenue|rd|road|"
            r"haunted|house|attraction))",
            r"asilo (?:politico|de refugiados?)",
            r"(?:solicitante|solicitud|pedido|peticion)e?s? de asilo",
            r"refugee (?:status|claims?|applications?|checks?)",
            r"permiso de trabajo",
            r"work permit (?:checks?|verification)",
            r"employment authorization",
            r"sevis",
            r"notice to appear",
        ),
    }
)
# "asylum" the old hospital or the haunted house, not the protection.
_ASYLUM_PLACE = re.compile(r" (?:old|insane|abandoned|lunatic|haunted|former) asylum(?= )")

_ICE = re.compile(r" (?:ice|iceero|icehsi)(?= )")
_ERO = re.compile(r" ero(?= )")
_DHS = re.compile(r" dhs(?= )")
# ICE the frozen water or the drug, not the agency.
_ICE_NOT_AGENCY = re.compile(
    r" (?:black|dry|shaved|thin|crushed|bagged|snow|sno|blue|of|slid on|slipped on) ice(?= )"
    r"| ice (?:cream\w*|rinks?|machines?|chests?|cubes?|storms?|skat\w*|hockey|arenas?|makers?|"
    r"box\w*|bags?|picks?|coolers?|age|tea|houses?|plants?|sheets?|patch\w*|fishing|cold|"
    r"dispenser\w*|sculptures?|on (?:the )?(?:road\w*|bridge|freeway|highway|hwy|street|"
    r"windshield))(?= )"
)
_DRUG_CONTEXT = re.compile(
    r" (?:meth\w*|crystal|narc\w*|drugs?|dope|shards?|grams?|oz|ounces?|pounds?|lbs|sales?|"
    r"sell\w*|sold|dealer\w*|deal|dealing|possession|poss for sale|hs|h and s|1137\d|1135\d|"
    r"1136\d|113\d\d\w*|fentanyl|heroin|cocaine|pills?|smoking|pipe|baggie\w*|seized)(?= )"
)
# Words that only make sense next to the agency, which settle "ice" even among drug words.
_ICE_AGENCY_CONTEXT = re.compile(
    r" ice (?:holds?|detainers?|warrants?|agents?|officers?|requests?|assist\w*|ero|hsi|pick ?ups?|"
    r"task force|tfo|special agents?|administrative|admin|removal|targets?|fugitives?|operations?)"
    r"(?= )| (?:assist\w*|per|requested by|request from|req from|for federal|with federal) ice(?= )"
)
_UPPER_ICE = re.compile(r"(?<![A-Za-z])I\.?C\.?E\.?(?![a-z])")
# ERO also abbreviates "emergency restraining order" in some agencies' logs.
_ERO_NOT_AGENCY = re.compile(r" (?:restrain\w*|protective|protection order|dv|domestic|tro|epo) ")
# In county government DHS is often the Department of Health (or Human) Services, which runs child
# protection: "DHS caseworker", "DHS child removal".
_DHS_NOT_AGENCY = re.compile(
    r" (?:health|human services|social services|social workers?|case ?workers?|cps|aps|cw|dcfs|"
    r"dcs|child\w*|kids?|minors?|juveniles?|youth|foster\w*|welfare|family services|placement|"
    r"protective custody|elder|abuse|neglect|self sufficiency|medi cal|medicaid|benefits|ebt|"
    r"snap|hospital|clinic|patient|mental|runaways?)(?= )"
)


# Any word an immigration rule starts from: most reasons have none, and then no rule needs to run.
_IMMIGRATION_ANY = re.compile(_IMMIGRATION.pattern + r"| (?:ero|dhs|ice|iceero|icehsi)(?= )")


def _immigration(original: str, norm: str) -> list[Finding]:
    if _IMMIGRATION_ANY.search(norm) is None:
        return []
    named = _NAMED_ENTITY.sub(" ", norm)
    found = _immigration_words(original, named)
    if found and " " in norm.strip():
        # Only a text that names an agency can have it as a victim or a protest's target.
        found = _immigration_words(original, _PROTEST_SPAN.sub(" ", _SUBJECT_SPAN.sub(" ", named)))
    return found


def _immigration_words(original: str, text: str) -> list[Finding]:
    if "asylum" in text:
        text = _ASYLUM_PLACE.sub(" ", text)
    found = _findings(_IMMIGRATION, text, "immigration")
    if _ERO.search(text) and not _ERO_NOT_AGENCY.search(text):
        found.append(Finding("immigration.agency", "ero"))
    if _DHS.search(text) and not _DHS_NOT_AGENCY.search(text):
        found.append(Finding("immigration.agency", "dhs"))
    if _is_ice_agency(original, text):
        found.append(Finding("immigration.agency", "ice"))
    return found


def _is_ice_agency(original: str, text: str) -> bool:
    if not _ICE.search(text):
        return False
    without_frozen = _ICE_NOT_AGENCY.sub(" ", text)
    if not _ICE.search(without_frozen):
        return False
    if _ICE_AGENCY_CONTEXT.search(text) or not _DRUG_CONTEXT.search(text):
        return True
    # "ice" is also methamphetamine. Writers who mean the agency capitalise it when they write in
    # mixed case; an all-caps or all-lower text gives no such hint, and then drug words decide.
    mixed_case = any(ch.islower() for ch in original) and any(ch.isupper() for ch in original)
    return mixed_case and _UPPER_ICE.search(original) is not None


# --- health care ----------------------------------------------------------------------------------

_HEALTH_CARE = _rules(
    {
        "abortion": (
            r"ab+ortion\w*",  # abortion, abbortion; not "aborted pursuit", not "abortive"
            r"abort(?:o|os|ar|aron|ista|istas)",  # Spanish: aborto, abortar, abortó
            r"abortiv[ao]s?",
            r"abortifacient\w*",
            r"abort(?:ed|ing)? (?:(?:her|the|a|his) )?(?:pregnancy|fetus|baby|child)",
            r"terminat\w* (?:(?:her|a|the|of|su|el) )?(?:pregnan\w*|embarazo)",
            r"pregnancy terminat\w*",
            r"end(?:ed|ing|s)? (?:(?:her|a|the|their) )?pregnan\w*",
            r"interrup\w* (?:(?:del|de|su|el) )?embarazo",
            r"embarazo interrumpido",
            r"dilation and (?:curettage|evacuation)",
        ),
        "abortion_medication": (
            r"mifepristone",
            r"misoprostol",
            r"mifeprex",
            r"cytotec",
            r"aid access",
            r"plan b (?:pills?|one step|tablets?|purchase|emergency)",
            r"(?:took|take|taking|bought|buy|buying|purchased) plan b",
            r"morning after pills?",
            r"(?:pildora|pastilla)s? del dia (?:despues|siguiente)",
        ),
        "contraception_fertility": (
            r"birth ?control",
            r"contracepti\w*",
            r"anticonceptiv\w*",
            r"iud",
            r"tubal ligation",
            r"vasectom\w*",
            r"ivf",
            r"in vitro(?: fertili[sz]ation)?",
            r"fecundacion in vitro",
            r"fertility (?:treatment|care|drugs?|medication)",
            r"tratamiento de fertilidad",
            r"embryo (?:transfer|implant\w*)",
            r"egg (?:retrieval|freezing)",
        ),
        "gender_affirming_care": (
            r"gender (?:affirm\w*|transition\w*|reassign\w*|confirm\w*)",
            r"sex (?:reassign\w*|change)",
            r"cambio de sexo",
            r"afirmacion de genero",
            r"transgender (?:care|surgery|clinic|treatment|hormones?|health\w*|medical|youth care)",
            r"trans (?:care|healthcare|health care|surgery|hormones?|youth care)",
            r"(?:top|bottom) surgery",
            r"hormone (?:therapy|treatment|blockers?|replacement)",
            r"terapia hormonal",
            r"puberty blockers?",
            r"bloqueadores de (?:la )?pubertad",
            r"(?:estrogen|testosterone) (?:for|during) (?:gender )?transition",
            r"transition (?:care|surgery|treatment)",
        ),
        "reproductive_care": (
            r"reproductiv\w*",
            r"repro (?:care|health\w*|rights)",
            r"family planning",
            r"planificacion familiar",
        ),
    }
)
# Places where care is given. Searching for a crime done at or to one is ordinary police work;
# searching for who went there is not.
_HEALTH_VENUE_WORDS = _alt(
    r"planned parenthood",
    r"(?:abortion|reproductive|family planning|gender|womens|women s|fertility|ivf) "
    r"(?:clinics?|providers?|centers?|centres?|doctors?)",
    r"clinicas? de abortos?",
    r"miscarriage\w*(?! of justice)",
)
_HEALTH_VENUE = _rules({"care_venue": (_HEALTH_VENUE_WORDS,)})
_VENUE_OBJECT = (
    r"(?:at|of|to|against|outside|near|inside|in front of|on|the|a|an|its|clinic|staff|"
    r"employees?|workers?|doctors?|nurses?|windows?|doors?|property|building|sign|lot|parking)"
)
_CRIME_AT_VENUE = re.compile(
    r" "
    + _alt(
        _CRIME_AGAINST + rf"(?: {_VENUE_OBJECT}){{0,4}} {_HEALTH_VENUE_WORDS}",
        rf"(?:windows?|doors?|building|sign|property)s? (?:smashed|broken|damaged|vandali[sz]ed|"
        rf"tagged|burned)(?: {_VENUE_OBJECT}){{1,3}} {_HEALTH_VENUE_WORDS}",
        _HEALTH_VENUE_WORDS + rf"(?: {_VENUE_OBJECT})? (?:{_CRIME_AGAINST}|break ?ins?|"
        r"trespass\w*|burglar\w*|threat\w*|fire)",
    )
    + r"(?= )"
)


_HEALTH_ANY = re.compile(_HEALTH_CARE.pattern + "|" + _HEALTH_VENUE.pattern)


def _health_care(norm: str) -> list[Finding]:
    if _HEALTH_ANY.search(norm) is None:
        return []
    venues = _findings(_HEALTH_VENUE, norm, "health_care")
    text = _CRIME_AT_VENUE.sub(" ", norm) if venues else norm
    if text is not norm:
        venues = _findings(_HEALTH_VENUE, text, "health_care")
    return _findings(_HEALTH_CARE, text, "health_care") + venues


# --- protected activity ---------------------------------------------------------------------------

_PROTEST = _rules(
    {
        "protest": (
            r"protest\w*",
            r"counter ?protest\w*",
            r"no ?kings?",
            r"50501",
            r"hands off",
            r"rall(?:y|ies|ying)(?! s )",
            r"demonstrat(?:ions?|ors?|ing)",
            r"marchers?",
            r"(?:protest|peace|freedom|solidarity|pride|womens|women s|civil rights|student|labor|"
            r"may day|mayday) march(?:es)?",
            r"march(?:ed|ing)? (?:against|for justice|in protest|on city hall|on the capitol)",
            r"activis[mt]\w*",
            r"(?:first|1st) amend\w*",
            r"1a (?:activity|event|assembly|audit\w*)",
            r"picket\w*",
            r"boycott\w*",
            r"tesla takedown",
            r"free palestine",
            r"pro palestin\w*",
            r"black lives matter",
            r"antifa",
            r"civil disobedience",
            r"walkouts?",
            r"political (?:signs?|events?|rall(?:y|ies)|meetings?|groups?|speech)",
            r"abolish ice",
            r"anti ice",
            r"manifestaci\w*",
        ),
    }
)
# "demonstration" also means showing the product to a council or trainee.
_PRODUCT_DEMO = re.compile(
    r" (?:flock|system|camera\w*|product|training|trainee\w*|demo|council|vendor|software|"
    r"feature|app|dashboard|portal)(?= )"
)
_DEMONSTRATION_ONLY = re.compile(r" demonstrat(?:ions?|ing)(?= )")


def _protected_activity(norm: str, crime_named: bool) -> list[Finding]:
    # A named crime at a protest (assault, vandalism, a penal-code section) makes the crime the
    # purpose; the protest is only where it happened. A bare case number does not: an agency can
    # open a "case" for a protest itself.
    if crime_named:
        return []
    found = _findings(_PROTEST, norm, "protected_activity")
    if found and _PRODUCT_DEMO.search(norm) is not None:
        return _findings(_PROTEST, _DEMONSTRATION_ONLY.sub("", norm), "protected_activity")
    return found


# --- profiling ------------------------------------------------------------------------------------

# A group named as such is profiling whatever else the reason says (EFF found "g*psy ruse" and
# "roma traveler" searches with or without a crime attached).
_GROUP = _rules(
    {
        "group_name": (
            r"g[iy]ps(?:y|ies|ie|ys)?",
            r"gyspy|gyspies|gpysy|gpsy|gypsey|gypsys|gipsey",
            r"g psy|g psies",
            r"romas?",
            r"romani|romany|romanies",
            r"(?:irish )?travel+ers? (?:group|crew|gang|communit\w*|family|families|camp)",
            r"irish travel+ers?",
            r"pikeys?",
            r"wetbacks?",
            r"beaners?",
        )
    }
)
# Descriptors of a protected class: a legitimate suspect description when a crime is named, the
# whole purpose when none is ("hispanic male", "vehicle occupied by <nationality> national").
_DESCRIPTOR = _rules(
    {
        "descriptor_without_crime": (
            r"hispanics?",
            r"latin[oax]s?",
            r"mexicans?",
            r"asians?",
            r"arabs?",
            r"arabic",
            r"middle eastern\w*",
            r"muslims?",
            r"islamic",
            r"jew(?:s|ish)?",
            r"sikhs?",
            r"african americans?",
            r"native americans?",
            r"romanians?",
            r"colombians?",
            r"chileans?",
            r"south americans?",
            r"venezuelans?",
            r"haitians?",
            r"somalis?",
            r"(?:black|white|brown) (?:males?|females?|m|f|man|men|woman|women|guys?|subjects?|"
            r"persons?|people|juveniles?|kids?|teens?|individuals?|occupants?|drivers?)",
            r"gay|lesbian|transgender",
            r"(?:foreign|[a-z]+(?:an|ese|ish|i)) nationals?",
        )
    }
)

# Places, foods and trades that carry the same letters as a group name.
_NOT_GROUP = re.compile(
    r" (?:pizza|pizzeria|casa|via|villa|la|de|di|cafe|caffe|trattoria|hotel|bella) romas?(?= )"
    r"| romas? (?:st|street|ave|avenue|rd|road|dr|drive|blvd|way|ct|court|ln|lane|pl|place|pizza|"
    r"pizzeria|restaurant|cafe|market|tomato\w*|deli|bakery|italian|ristorante|apartments?|apts?|"
    r"village|park|hotel|tx|texas|italy)(?= )"
    r"| g[iy]ps\w* (?:cabs?|moths?|taxis?|jazz)(?= )"
)


def _profiling(norm: str, crime_named: bool, case_numbered: bool) -> list[Finding]:
    found = _findings(_GROUP, norm, "profiling")
    if found:
        found = _findings(_GROUP, _NOT_GROUP.sub(" ", norm), "profiling")
    if not found and not crime_named and not case_numbered:
        found = _findings(_DESCRIPTOR, norm, "profiling")
    return found


# --- named crimes and case numbers ----------------------------------------------------------------

_CRIME_WORDS = (
    r"burg\w*",
    r"rob\w*",
    r"theft\w*",
    r"thie[fv]\w*",
    r"steal\w*",
    r"stole\w*",
    r"stln",
    r"stol\w*",
    r"larceny",
    r"shoplift\w*",
    r"homicide\w*",
    r"murder\w*",
    r"manslaughter",
    r"assault\w*",
    r"battery",
    r"adw",
    r"carjack\w*",
    r"kidnap\w*",
    r"abduct\w*",
    r"missing",
    r"runaways?",
    r"hnr",
    r"amber",
    r"dui|dwi|owi|ovi",
    r"narc\w*",
    r"drugs?",
    r"meth\w*",
    r"fentanyl",
    r"fraud\w*",
    r"scam\w*",
    r"vandal\w*",
    r"graffiti",
    r"arson\w*",
    r"shoot\w*",
    r"stab\w*",
    r"rape",
    r"sex\w*",
    r"traffick\w*",
    r"smuggl\w*",
    r"weapons?",
    r"guns?",
    r"firearms?",
    r"trespass\w*",
    r"embezzl\w*",
    r"forg\w*",
    r"counterfeit\w*",
    r"extort\w*",
    r"abuse\w*",
    r"evad\w*",
    r"elud\w*",
    r"pursuit",
    r"riot\w*",
    r"loot\w*",
    r"damage\w*",
    r"threat\w*",
    r"harass\w*",
    r"stalk\w*",
    r"brandish\w*",
    r"impersonat\w*",
    r"uuv|gta|orc",
    r"dv|domestic",
    r"warrants?",
    r"wanted",
    r"fugitive\w*",
    r"parole\w*",
    r"probation\w*",
    r"reckless\w*",
    r"obstruct\w*",
    r"death",
    r"child",
    r"extortion",
    r"bomb\w*",
    r"explosive\w*",
    r"catalytic",
)
_CRIME = re.compile(
    r" "
    + _alt(
        *_CRIME_WORDS,
        r"car jack\w*",
        r"hit and run",
        r"hit run",
        r"h and r",
        r"silver alert",
        r"road rage",
        r"unlawful assembly",
        r"failure to disperse",
        r"blocking (?:traffic|roadway|the road|freeway)",
        r"hate crimes?",
        r"identity theft",
        # California penal, vehicle and health-and-safety sections that logs write bare
        r"187|211|215|243|245|261|273\w*|288\w*|422|451|459\w*|484\w*|487\w*|496|503|594\w*|"
        r"646\w*|664|10851\w*|20001\w*|20002\w*|23152\w*|2800\w*|1135\d|1137\d",
        # a section with its code: "211 PC", "211PC", "PC 459", "10851(a) CVC", "245 a 2 pc"
        r"\d{2,6}(?: [a-z0-9]{1,2}){0,3} ?(?:pc|cpc|vc|cvc|hs|hsc|penal|fss|ors|rcw|ilcs)",
        r"\d{2,6}(?:pc|cpc|vc|cvc|hs|hsc)\w*",
        r"(?:pc|cpc|vc|cvc|hs|hsc|penal code|fs|fss|ors|rcw) ?\d{2,6}\w*",
    )
    + r"(?= )"
)
_CRIME_WORD = re.compile(_alt(*_CRIME_WORDS))
# Agency case and report numbers: "26-01628", "CR25-1234", "2504210474", "IPD-24-13441".
_CASE_NUMBER = re.compile(r" (?:[a-z]{0,5} ?\d{2,4} \d{3,}|\w*\d{5,}\w*)(?= )")
# Dates ("5/28/2024", "3/23/26") would otherwise read as case numbers or as specific numbers.
_DATE = re.compile(r" \d{1,2} \d{1,2} (?:\d{4}|\d{2})(?= )")
_HAS_DIGIT = re.compile(r"\d")


# --- missing and vague ----------------------------------------------------------------------------

_PLACEHOLDERS = frozenset(
    {
        "",
        "none",
        "n a",
        "na",
        "nan",
        "null",
        "nil",
        "no",
        "x",
        "xx",
        "xxx",
        "test",
        "tst",
        "tbd",
        "unk",
        "unknown",
        "blank",
        "empty",
        "placeholder",
        "reason",
        "no reason",
        "none given",
        "no reason given",
        "not applicable",
        "other not applicable",
        "other n a",
        "n a n a",
        "asdf",
        "asd",
        "qwerty",
        "daytime search for best result",
    }
)
# Vendor-generated texts that record no human-entered purpose.
_GENERATED = re.compile(r" daytime search (?:for best result|from hotlist)")
_TEST_WORD = re.compile(r" (?:tests?|testing|tested|tester|tst)(?= )")
_REPEATED_CHAR = re.compile(r"^ ([a-z0-9])\1* $")

# Words that name no crime, case or person: a reason made only of these (and short numbers) is
# vague. Crime words, case numbers, section numbers, names and places are all outside this set, so
# anything unrecognised counts as specific: the classifier errs toward letting a reason through as
# specific rather than denying a search because it did not know a surname or a street.
_FILLER_WORDS = """
    a an the of for to from in on at by with and or per re regarding about as is was be this
    that investigation investigations investigative investigate investigating investigator
    investigators inv invs invest invst invg inves inve investig inest ivest imvest suspect
    suspects susp susps sus suspec suspet suspicious suspicous suspicion suspected circ circs
    circumstance circumstances subject subj subjects person persons people individual male
    female males females man woman occupant occupants driver drivers victim victims juvenile
    juveniles vehicle vehicles veh vehs car cars auto plate plates plt tag tags license lp lpr
    alpr hit hits read reads image images photo photos video download downloads bolo bol atl
    attempt attempting locate locating location find finding search searching searched query
    lookup look looking check checking chk verify verification confirm confirmation identify
    identification id follow up followup fu f u intel intelligence info information tip tips
    lead leads other others misc miscellaneous general various unspecified possible poss
    possibly potential potentially maybe related involved associated case cases active open
    ongoing pending current new crime crimes criminal crim felony felonies misdemeanor property
    patrol police officer officers ofc ofcr deputy deputies detective detectives det dets sgt
    unit team division dept department agency agencies pd so sd sheriff sheriffs law enforcement
    le leo justice assist assisting assistance request requested req rq help call calls service
    cfs progress safety bulletin flyer briefing alert alerts detail details operation ops
    special services siu metro activity proactive routine area training demo administrative
    admin review research black white red blue silver gray grey green gold tan brown dark light
    maroon unk unknown hispanic hispanics latino latina latinos latinas latinx mexican mexicans
    asian asians arab arabs middle eastern muslim muslims jewish sikh sikhs african american
    americans native gay lesbian transgender romanian romanians colombian colombians chilean
    chileans venezuelan venezuelans haitian haitians somali somalis national nationals foreign
    south
"""
_FILLER = frozenset(_FILLER_WORDS.split())
_INVESTIGATION_FORMS = (
    "investigation",
    "investigations",
    "investigative",
    "investigate",
    "investigating",
    "investigator",
)


@functools.lru_cache(maxsize=16384)
def _is_filler(token: str) -> bool:
    if token in _FILLER:
        return True
    if token.isdigit():
        return len(token) <= 2
    if len(token) == 1:
        return True
    # Abbreviated and misspelt "suspect"/"suspicious" and "vehicle" are the commonest vague words.
    if token.startswith("sus") and not token.startswith("suspen"):
        return True
    if token.startswith(("veh", "vech", "vhe", "vhi")):
        return True
    # "investigaton", "inestigation", "investagtion": logs are typed fast and never corrected.
    if token[:1] == "i" and len(token) >= 7:
        return any(edit_distance(token, form, 2) <= 2 for form in _INVESTIGATION_FORMS)
    return False


def _missing(norm: str, specific: bool) -> list[Finding]:
    stripped = norm.strip()
    if not stripped:
        return [Finding("missing.empty", "")]
    if stripped in _PLACEHOLDERS or _REPEATED_CHAR.match(norm) is not None:
        return [Finding("missing.placeholder", stripped)]
    generated = _GENERATED.match(norm)
    if generated is not None:
        return [Finding("missing.generated_text", generated.group(0).strip())]
    test = None if specific else _TEST_WORD.search(norm)
    if test is not None:
        # "Admin test", "testing new camera at <street>": trial searches state no purpose at all.
        return [Finding("missing.test_search", test.group(0).strip())]
    return []


def _is_vague(norm: str) -> bool:
    return all(_is_filler(token) for token in norm.split())


# --- vocabulary for the word repairs --------------------------------------------------------------

# Every word a prohibited-purpose rule reads, one word at a time: what a disguised word may be
# repaired into.
_KEYWORD = re.compile(
    _alt(
        r"ice|ero|hsi|cbp|usbp|uscis|dhs|eoir|sevis|daca|ivf|iud",
        r"i[mn]{1,2}[aeiy]?gr[aeiy]?[tc]\w*|immgr\w*|immig\w*",
        r"migra|migracion|migratori[oa]s?|migrantes?|migrants?|aliens?|illegals",
        _DEPORT,
        r"undocumented|indocumentad[oa]s?",
        r"homeland\w*|borderpatrol\w*|border|patrol|customs|patrulla|fronteriza",
        r"asylum|asylees?|asilo|visas?|refugees?|naturali[sz]ation|citizenship|noncitizens?",
        r"detainers?|removal",
        r"ab+ortion\w*|abort(?:o|os|ar|aron|ista|istas)|abortiv[ao]s?|abortifacient\w*",
        r"reproductiv\w*|mifepristone|misoprostol|mifeprex|cytotec|contracepti\w*|"
        r"anticonceptiv\w*",
        r"pregnan\w*|embarazo|transgender|trans|gender|affirming|puberty|blockers|hormones?",
        r"planned|parenthood|miscarriage\w*|vasectom\w*|fertility|embryos?|birthcontrol",
    )
)
# Short agency names glued to the words around them ("ICEhold", "assistICE"), and those words.
_GLUE_NAMES = frozenset(
    {"ice", "ero", "hsi", "cbp", "usbp", "uscis", "dhs", "alien", "aliens", "migra"}
)
_GLUE_WORDS = frozenset(
    (
        *("hold", "holds", "detainer", "detainers", "warrant", "warrants", "raid", "raids"),
        *("agent", "agents", "officer", "officers", "assist", "assistance", "request"),
        *("requests", "req", "case", "cases", "pickup", "custody", "op", "ops", "operation"),
        *("operations", "enforcement", "target", "targets", "fugitive", "fugitives", "removal"),
        *("deport", "deportation", "tfo", "taskforce", "task", "force", "sweep", "arrest"),
        *("transfer", "locate", "referral", "check", "investigation", "investigations", "team"),
        *("admin", "administrative", "per", "for", "help", "with", "detention", "facility"),
        "federal",
    )
)
# Long keywords that are never part of an ordinary word, split off wherever they occur.
_INNER_KEYWORDS = (
    "immigration",
    "inmigracion",
    "deportation",
    "deported",
    "deportee",
    "borderpatrol",
    "homelandsecurity",
    "undocumented",
    "abortion",
    "mifepristone",
    "misoprostol",
    "reproductive",
)
_SPELLINGS = (
    "immigration",
    "immigrant",
    "immigrants",
    "deportation",
    "undocumented",
    "abortion",
    "abortions",
    "mifepristone",
    "misoprostol",
    "reproductive",
    "contraception",
    "contraceptive",
    "contraceptives",
    "naturalization",
    "transgender",
)
_SPELLING_PAIRS = (
    ("border", "patrol"),
    ("border", "protection"),
    ("homeland", "security"),
    ("planned", "parenthood"),
    ("gender", "affirming"),
    ("puberty", "blockers"),
    ("hormone", "therapy"),
    ("birth", "control"),
)


def _rule_words(patterns: Sequence[re.Pattern[str]]) -> tuple[frozenset[str], re.Pattern[str]]:
    """The literal words (3+ letters) and the stems (``word\\w*``) that the rules' patterns read.

    Read from the compiled patterns themselves, so the words a disguised text may be repaired into
    are always exactly those some rule matches: "security" for "homeland security", "order" for
    "removal order", "care" for "trans care".
    """
    words: set[str] = set()
    stems: set[str] = set()
    for pattern in patterns:
        source = re.sub(r"\(\?P<\w+>", "(", pattern.pattern)
        source = re.sub(r"\[[^\]]*\]|\\[dsWbB]|\{\d+(?:,\d*)?\}", "", source.replace(r"\w*", "~"))
        for word, mark in re.findall(r"([a-z]{3,})([~?]?)", source):
            if mark == "~":
                stems.add(word)
            else:
                words.add(word)
                if mark == "?":  # "orders?": both "orders" and "order"
                    words.add(word[:-1])
    stem_pattern = re.compile(
        "(?:" + "|".join(sorted(stems, key=len, reverse=True)) + ")[a-z]{0,6}"
    )
    return frozenset(words), stem_pattern


_RULE_LITERALS, _RULE_STEMS = _rule_words(
    (
        _IMMIGRATION,
        _SUBJECT_SPAN,
        _PROTEST_SPAN,
        _NAMED_ENTITY,
        _ICE_AGENCY_CONTEXT,
        _ICE_NOT_AGENCY,
        _HEALTH_CARE,
        _HEALTH_VENUE,
        _CRIME_AT_VENUE,
        _PROTEST,
        _CRIME,
    )
)


@functools.lru_cache(maxsize=16384)
def _is_keyword(word: str) -> bool:
    return _KEYWORD.fullmatch(word) is not None


@functools.lru_cache(maxsize=32768)
def _is_known(word: str) -> bool:
    return (
        word in _FILLER
        or word in _GLUE_WORDS
        or word in _RULE_LITERALS
        or _is_keyword(word)
        or _RULE_STEMS.fullmatch(word) is not None
        or _CRIME_WORD.fullmatch(word) is not None
    )


# Keywords of five letters or more among the rules' words: a glued word holding one is split.
_ROOTS = tuple(sorted(word for word in _RULE_LITERALS if len(word) >= 5 and _is_keyword(word)))


_VOCABULARY = Vocabulary(
    known=_is_known,
    keyword=_is_keyword,
    glue_names=_GLUE_NAMES,
    glue_words=_GLUE_WORDS,
    inner_keywords=_INNER_KEYWORDS,
    roots=_ROOTS,
    spellings=_SPELLINGS,
    spelling_pairs=_SPELLING_PAIRS,
)
_WORDS = WordFolder(_VOCABULARY)


def _normalise(text: str) -> tuple[str, tuple[str, ...]]:
    """The text as " word word " in lower-case ASCII, and the disguises undone to get there."""
    characters = fold_unicode(text)
    words = _WORDS.fold(characters.text)
    norm = _DATE.sub("", words.text) if _HAS_DIGIT.search(words.text) else words.text
    return norm, characters.steps + words.steps


# --- entry point ----------------------------------------------------------------------------------


def _explain(text: str) -> Explanation:
    norm, folds = _normalise(text)
    crime_named = _CRIME.search(norm) is not None
    case_numbered = _CASE_NUMBER.search(norm) is not None
    specific = crime_named or case_numbered
    findings = [
        *_immigration(text, norm),
        *_health_care(norm),
        *_protected_activity(norm, crime_named),
        *_profiling(norm, crime_named, case_numbered),
    ]
    if not findings:
        findings = _missing(norm, specific)
        if findings:
            return Explanation(("missing",), tuple(findings), folds, norm.strip())
    if not specific and _is_vague(norm):
        findings.append(Finding("vague.filler_only", norm.strip()))
    if not findings:
        return Explanation((), (), folds, norm.strip())
    # Rules run in category order, so the findings already are in it.
    categories = tuple(dict.fromkeys(finding.category for finding in findings))
    return Explanation(categories, tuple(findings), folds, norm.strip())


def _categorise(text: str) -> tuple[str, ...]:
    return _explain(text).categories


_explain_cached = functools.lru_cache(maxsize=65536)(_explain)


# `object`, not `str | None`: a compiled build checks annotations at run time (docs/compiled.md).
def explain(text: object) -> Explanation:
    """The categories of a search purpose with the rule behind each one (see :class:`Explanation`).

    ``None`` and anything that is not a string (a JSON number or object in a malformed event) count
    as a missing purpose rather than raising: the engine must decide every event.
    """
    if not isinstance(text, str):
        return Explanation(("missing",), (Finding("missing.not_text", ""),), (), "")
    if len(text) > _CACHE_MAX_TEXT:
        return _explain(text)
    return _explain_cached(text)


def classify(text: object) -> tuple[str, ...]:
    """Categories of a search purpose, in CATEGORIES order, no duplicates.

    An empty tuple means a specific, permitted purpose. ``None`` and non-strings are ``missing``.
    """
    return explain(text).categories


def cache_clear() -> None:
    """Forget every cached classification (benchmarks time the uncached path with this)."""
    _explain_cached.cache_clear()

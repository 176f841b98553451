"""Purpose classifier: the prohibited or insufficient categories a free-text search reason falls in.

Pure and I/O free. The engine calls :func:`classify` once per search event, so every pattern is
compiled at import, the text is normalised once, and results are cached per distinct text (real
reasons repeat a lot: about 12k distinct strings in 166k logged cells). docs/classifier.md explains
the rules and the measured error rates.
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = ("CATEGORIES", "classify")

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


def _alt(*parts: str) -> str:
    return "(?:" + "|".join(parts) + ")"


# --- normalisation --------------------------------------------------------------------------------

# Dotted or spaced-dot acronyms ("I.C.E.", "u.s.b.p") are joined before punctuation becomes spaces,
# or they would fall apart into single letters.
_DOTTED_ACRONYM = re.compile(r"(?<![a-z0-9])(?:[a-z]\.\s?){2,}[a-z]?(?![a-z0-9])")
# Letters of other scripts stay as tokens: a reason written in Cyrillic or Chinese says something
# even though no pattern here reads it, so it must not fold away into an empty, "missing" text.
_NON_WORD = re.compile(r"[\W_]+")


def _normalise(text: str) -> str:
    """Lower-case ASCII tokens separated by single spaces, with a space at each end.

    Accents are dropped so Spanish spellings ("inmigración") match, compatibility forms are folded
    so full-width or styled letters cannot dodge a pattern, and format characters (zero-width
    spaces, joiners) are removed rather than turned into spaces, so "I\u200bCE" is still "ice".
    """
    folded = unicodedata.normalize("NFKD", text)
    kept = "".join(ch for ch in folded if unicodedata.category(ch) not in ("Mn", "Cf"))
    lowered = kept.casefold().replace("&", " and ")
    joined = _DOTTED_ACRONYM.sub(lambda m: m.group(0).replace(".", "").replace(" ", ""), lowered)
    return " " + " ".join(_NON_WORD.sub(" ", joined).split()) + " "


# --- immigration ----------------------------------------------------------------------------------

# Names of immigration agencies, in the forms logs use. HSI counts although Homeland Security
# Investigations also works drug and child-exploitation cases: it is a directorate of ICE, the
# reason field rarely says which work it is, and every published analysis of these logs (404 Media,
# St. Louis Park, Atlanta Press Collective) counts "HSI" as immigration. A non-immigration HSI case
# is a false positive we accept: it costs a re-justified search, a miss an unlawful disclosure.
_AGENCY = _alt(
    r"ice",
    r"i c e",
    r"ero",
    r"hsi",
    r"cbp",
    r"usbp",
    r"uscis",
    r"dhs",
    r"homeland security(?: investigations?)?",
    r"dept of homeland security",
    r"department of homeland security",
    r"b[o]?a?rder ?patrol",
    r"customs and border protection",
    r"customs border protection",
    r"border protection",
    r"immigration(?: and customs enforcement)?",
    r"enforcement and removal operations",
)
_AGENT_NOUN = r"(?: (?:agents?|officers?|officials?|personnel|badges?|vests?|uniforms?|raids?))?"

# A crime whose subject or victim merely names the agency ("ICE impersonation fraud", "assault on a
# border patrol agent") is an ordinary criminal case, not immigration work: these spans are removed
# before the agency patterns run.
_SUBJECT_SPAN = re.compile(
    r" "
    + _alt(
        # impersonation and hoaxes: the agency is what the suspect pretended to be
        r"(?:impersonat\w*|impostors?|imposters?|posing as|poses as|pose as|pretend\w*(?: to be)?|"
        r"claim\w* to be|fake|false|phony|bogus|fraudulent|counterfeit|fictitious)"
        r"(?: (?:an?|the|of|as|federal|us))*(?: \w+)?? " + _AGENCY + _AGENT_NOUN,
        _AGENCY
        + _AGENT_NOUN
        + r" (?:impersonat\w*|impostors?|imposters?|scam\w*|hoax\w*|imitat\w*|"
        r"spoof\w*|pretext\w*)",
        # the agency or its staff as victim of a crime
        r"(?:assault\w*|threat\w*|attack\w*|shoot\w*|shots?(?: fired)?|ambush\w*|vandal\w*|"
        r"arson|dox\w*|harass\w*|stalk\w*|kill\w*|murder\w*|battery|bomb\w*|brandish\w*|rammed|ramming|"
        r"obstruct\w*|resist\w*|interfer\w*|injur\w*|rob\w*|burglar\w*|theft|steal\w*|stolen)"
        r"(?: (?:on|of|against|at|to|toward|towards|upon|from|with|an?|the|federal|us)){0,3} "
        + _AGENCY
        + _AGENT_NOUN,
        _AGENCY
        + r" (?:agents?|officers?|vehicles?|trucks?|cars?|facility|facilities|office|building|"
        r"property)(?: (?:was|were|is|got|being))? (?:assaulted|attacked|shot|threatened|"
        r"vandali[sz]ed|damaged|stolen|burglari[sz]ed|rammed|robbed|doxx?ed|harassed)",
        # protests about the agency: the protest is the purpose (PROTECTED_ACTIVITY), not the agency
        r"(?:protest\w*|rally|rallies|demonstrat\w*|march\w*|picket\w*|vigil)"
        r"(?: (?:at|against|outside|near|in front of|of|the|an?|local)){1,3} " + _AGENCY + r"\w*",
        r"(?:anti|abolish|fuck|no) " + _AGENCY + r"(?= (?:protest\w*|rally|rallies|march\w*|"
        r"demonstrat\w*|picket\w*|sign\w*|graffiti|group|activists?) )",
        r"(?:anti|abolish) " + _AGENCY,
        _AGENCY + r" (?:protest\w*|rally|rallies|demonstrat\w*|march\w*|picket\w*)",
    )
    + r"(?= )"
)

_IMMIGRATION_WORDS = re.compile(
    r" "
    + _alt(
        r"i[mn]{1,2}[aeiy]?gr[aeiy]?[tc]\w*",  # immigration, imigration, immagration, inmigracion
        r"immgr\w*",
        r"immig\w*",
        r"immigation\w*",
        r"imm (?:stat\w*|enf\w*|holds?|cases?|warrants?|violations?|detainers?)",
        # "BP" alone is also the fuel brand; next to these words it is Border Patrol
        r"bp (?:assist\w*|agents?|requests?|officers?|holds?)",
        r"(?:la )?migra(?:cion)?",
        r"aliens?",
        r"deport\w*",
        r"removal (?:orders?|proceedings?|cases?|hearings?|warrants?)",
        r"orders? of removal",
        r"undocumented",
        r"illegals",
        r"illegal (?:aliens?|immigrants?|entry|re ?entry)",
        r"visa overstay\w*",
        r"8 ?usc\w*",
        r"hsi",
        r"cbp",
        r"usbp",
        r"uscis",
        r"homeland ?(?:sec\w*|investigations?)",
        r"homelandsec\w*",
        r"(?:dept|department) (?:of )?homeland",
        r"287 ?g",  # the 287(g) agreements that deputise local officers for ICE
        r"b[o]?a?rder ?patrol",
        r"border protection",
        r"customs and border",
        r"customs border",
        r"enforcement and removal",
    )
    + r"(?= )"
)
_ICE = re.compile(r" (?:ice|i c e|iceero|icehsi)(?= )")
_ERO = re.compile(r" ero(?= )")
_DHS = re.compile(r" dhs(?= )")
# ICE the frozen water or the drug, not the agency.
_ICE_NOT_AGENCY = re.compile(
    r" (?:black|dry|shaved|thin|crushed|bagged|snow|sno|blue) ice(?= )"
    r"| ice (?:cream\w*|rinks?|machines?|chests?|cubes?|storms?|skat\w*|hockey|arenas?|makers?|"
    r"box\w*|bags?|picks?|coolers?|age|tea|houses?|plants?|sheets?|patch\w*|fishing|"
    r"dispenser\w*|on (?:the )?(?:road\w*|bridge|freeway|highway|hwy|street|windshield))(?= )"
)
_DRUG_CONTEXT = re.compile(
    r" (?:meth\w*|crystal|narc\w*|drugs?|dope|shards?|grams?|oz|ounces?|pounds?|lbs|sales?|"
    r"sell\w*|dealer\w*|dealing|possession|poss for sale|hs|h and s|1137\d|1135\d|1136\d|"
    r"113\d\d\w*|fentanyl|heroin|cocaine|pills?|smoking|pipe|baggie\w*)(?= )"
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
# In county government DHS is often the Department of Health (or Human) Services.
_DHS_NOT_AGENCY = re.compile(
    r" (?:health|human services|social services|social worker|cps|aps|child welfare|foster|"
    r"medi cal|medicaid|benefits|ebt|snap|hospital|clinic|patient|mental)(?= )"
)


def _is_immigration(original: str, norm: str) -> bool:
    text = _SUBJECT_SPAN.sub(" ", norm) if " " in norm.strip() else norm
    if _IMMIGRATION_WORDS.search(text):
        return True
    if _ERO.search(text) and not _ERO_NOT_AGENCY.search(text):
        return True
    if _DHS.search(text) and not _DHS_NOT_AGENCY.search(text):
        return True
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

_HEALTH_PROCESS = re.compile(
    r" "
    + _alt(
        r"ab+ort[io]\w*",  # abortion, abbortion, abortian; not "aborted pursuit"
        r"reproductive\w*",
        r"repro (?:care|health\w*|rights)",
        r"gender (?:affirm\w*|transition\w*|reassign\w*|confirm\w*)",
        r"transgender (?:care|surgery|clinic|treatment|hormones?|health\w*|medical)",
        r"trans (?:care|healthcare|health care|surgery|hormones?)",
        r"hormone (?:therapy|treatment|blockers?)",
        r"puberty blockers?",
        r"mifepristone",
        r"misoprostol",
        r"morning after pills?",
        r"terminat\w* (?:her |a |the |of )?pregnan\w*",
        r"pregnancy terminat\w*",
        r"birth control",
        r"contracepti\w*",
        r"ivf",
    )
    + r"(?= )"
)
# Places where care is given: searching for a crime committed there is ordinary police work, so
# these count only when no crime is named.
_HEALTH_VENUE = re.compile(
    r" "
    + _alt(
        r"planned parenthood",
        r"(?:abortion|reproductive|family planning|gender|womens|women s) (?:clinics?|providers?|"
        r"centers?|centres?|doctors?)",
        r"miscarriage\w*",
    )
    + r"(?= )"
)


def _is_health_care(norm: str, crime_named: bool) -> bool:
    if crime_named:
        return _HEALTH_PROCESS.search(_HEALTH_VENUE.sub(" ", norm)) is not None
    return _HEALTH_PROCESS.search(norm) is not None or _HEALTH_VENUE.search(norm) is not None


# --- protected activity ---------------------------------------------------------------------------

_PROTEST = re.compile(
    r" "
    + _alt(
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
    )
    + r"(?= )"
)
# "demonstration" also means showing the product to a council or trainee.
_PRODUCT_DEMO = re.compile(
    r" (?:flock|system|camera\w*|product|training|trainee\w*|demo|council|vendor|software|"
    r"feature|app|dashboard|portal)(?= )"
)
_DEMONSTRATION_ONLY = re.compile(r" demonstrat(?:ions?|ing)(?= )")


def _is_protected_activity(norm: str, crime_named: bool) -> bool:
    match = _PROTEST.search(norm)
    if match is None:
        return False
    # A named crime at a protest (assault, vandalism, a penal-code section) makes the crime the
    # purpose; the protest is only where it happened. A bare case number does not: an agency can
    # open a "case" for a protest itself.
    if crime_named:
        return False
    if _PRODUCT_DEMO.search(norm) is None:
        return True
    return _PROTEST.search(_DEMONSTRATION_ONLY.sub("", norm)) is not None


# --- profiling ------------------------------------------------------------------------------------

# A group named as such is profiling whatever else the reason says (EFF found "g*psy ruse" and
# "roma traveler" searches with or without a crime attached).
_GROUP = re.compile(
    r" "
    + _alt(
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
    + r"(?= )"
)
# Descriptors of a protected class: a legitimate suspect description when a crime is named, the
# whole purpose when none is ("hispanic male", "vehicle occupied by <nationality> national").
_DESCRIPTOR = re.compile(
    r" "
    + _alt(
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
    + r"(?= )"
)


# Places, foods and trades that carry the same letters as a group name.
_NOT_GROUP = re.compile(
    r" (?:pizza|pizzeria|casa|via|villa|la|de|di|cafe|caffe|trattoria|hotel|bella) romas?(?= )"
    r"| romas? (?:st|street|ave|avenue|rd|road|dr|drive|blvd|way|ct|court|ln|lane|pl|place|pizza|"
    r"pizzeria|restaurant|cafe|market|tomato\w*|deli|bakery|italian|ristorante|apartments?|apts?|"
    r"village|park|hotel|tx|texas|italy)(?= )"
    r"| g[iy]ps\w* (?:cabs?|moths?|taxis?|jazz)(?= )"
)


def _is_profiling(norm: str, crime_named: bool, case_numbered: bool) -> bool:
    if _GROUP.search(_NOT_GROUP.sub(" ", norm)):
        return True
    return not crime_named and not case_numbered and _DESCRIPTOR.search(norm) is not None


# --- named crimes and case numbers ----------------------------------------------------------------

_CRIME = re.compile(
    r" "
    + _alt(
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
        r"car jack\w*",
        r"kidnap\w*",
        r"abduct\w*",
        r"missing",
        r"runaways?",
        r"hit and run",
        r"hit run",
        r"h and r",
        r"hnr",
        r"amber",
        r"silver alert",
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
        r"shots? fired",
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
        r"road rage",
        r"unlawful assembly",
        r"failure to disperse",
        r"obstruct\w*",
        r"blocking (?:traffic|roadway|the road|freeway)",
        r"homicide",
        r"death",
        r"hate crimes?",
        r"catalytic",
        r"identity theft",
        r"child",
        r"extortion",
        r"bomb\w*",
        r"explosive\w*",
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
# Agency case and report numbers: "26-01628", "CR25-1234", "2504210474", "IPD-24-13441".
_CASE_NUMBER = re.compile(r" (?:[a-z]{0,5} ?\d{2,4} \d{3,}|\w*\d{5,}\w*)(?= )")
# Dates ("5/28/2024", "3/23/26") would otherwise read as case numbers or as specific numbers.
_DATE = re.compile(r" \d{1,2} \d{1,2} (?:\d{4}|\d{2})(?= )")


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


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, giving up (returning limit + 1) once it must exceed limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


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
        return any(_edit_distance(token, form, 2) <= 2 for form in _INVESTIGATION_FORMS)
    return False


def _is_placeholder(norm: str) -> bool:
    return (
        norm.strip() in _PLACEHOLDERS
        or _REPEATED_CHAR.match(norm) is not None
        or _GENERATED.match(norm) is not None
    )


def _is_vague(norm: str) -> bool:
    return all(_is_filler(token) for token in norm.split())


# --- entry point ----------------------------------------------------------------------------------


def _categorise(text: str) -> tuple[str, ...]:
    norm = _DATE.sub("", _normalise(text))
    crime_named = _CRIME.search(norm) is not None
    case_numbered = _CASE_NUMBER.search(norm) is not None
    specific = crime_named or case_numbered
    found: list[str] = []
    if _is_immigration(text, norm):
        found.append("immigration")
    if _is_health_care(norm, crime_named):
        found.append("health_care")
    if _is_protected_activity(norm, crime_named):
        found.append("protected_activity")
    if _is_profiling(norm, crime_named, case_numbered):
        found.append("profiling")
    if found:
        if not specific and _is_vague(norm):
            found.append("vague")
        return tuple(found)
    if _is_placeholder(norm) or (not specific and _TEST_WORD.search(norm)):
        # "Admin test", "testing new camera at <street>": trial searches state no purpose at all.
        return ("missing",)
    if not specific and _is_vague(norm):
        return ("vague",)
    return ()


_categorise_cached = functools.lru_cache(maxsize=65536)(_categorise)


def classify(text: str | None) -> tuple[str, ...]:
    """Categories of a search purpose, in CATEGORIES order, no duplicates.

    An empty tuple means a specific, permitted purpose.

    ``None`` and anything that is not a string (a JSON number or object in a malformed event) count
    as a missing purpose rather than raising: the engine must decide every event.
    """
    if not isinstance(text, str):
        return ("missing",)
    if len(text) > _CACHE_MAX_TEXT:
        return _categorise(text)
    return _categorise_cached(text)

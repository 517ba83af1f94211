"""The built-in consent forms, one per drug and route, written from clinical.md's facts (pure: data only).

Each section cites where its facts come from. The figures are the reference's controlled ones (§9.3: ~45–55 %
short-term response, not the 60–70 % of small open-label studies); where the reference marks a fact
unconfirmed, the form says "your prescriber sets it" rather than a number. ``clinical.consent.form_problems``
checks these forms like any clinic's own version (tests/clinical/test_consent.py).

Changing a sentence here changes what new clinics publish as their version 1 (``BUILTIN_REVISION``); a clinic
that already published a version keeps it, and what each patient signed stays as it was signed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ketaclinic.clinical.consent import SECTION_HEADINGS, FormText, Section, SectionKey

BUILTIN_REVISION: Final = 1

K = SectionKey


def _s(key: SectionKey, text: str, source: str) -> Section:
    return Section(key=str(key), heading=SECTION_HEADINGS[key], text=" ".join(text.split()), source=source)


# --- shared by the racemic ketamine forms ---------------------------------------------------------------

_OFF_LABEL = _s(
    K.OFF_LABEL,
    """Ketamine is a licensed anaesthetic medicine. It is not FDA-approved for depression or for any other
    psychiatric condition: using it for this is off-label. It is offered because clinical trials show that it
    can help, but it has not been through the FDA's approval process for this use. Esketamine nasal spray
    (SPRAVATO) is the form that is FDA-approved for treatment-resistant depression.""",
    "clinical.md header and §3.3 (FDA, 2023: racemic ketamine not FDA-approved for any psychiatric "
    "indication); §7.4 (anaesthetic labeling); §2 (esketamine approval); §11",
)

_IV_BENEFIT_FIGURES = """In controlled studies about 45–55 % of people with treatment-resistant depression
    respond in the short term, meaning their depression score falls by at least half: 46 % one day after a single
    infusion against 26 % with an active placebo (Cochrane review, 2021), and 55 % after a 3-week course
    (ELEKT-D trial, 2023). Remission, when symptoms have mostly gone, is reached by about 13–46 %, depending on
    the clinic and the schedule."""

_BENEFIT_SOURCE = (
    "clinical.md §9.1 (Cochrane, Dean 2021: 46.5 % vs 25.9 % at 24 h; ELEKT-D, Anand 2023: 55.4 %), §9.3 "
    "(present ~45–55 %, remission ~13–46 %, not 60–70 %), §0 (response = ≥50 % fall)"
)

_KETAMINE_RELAPSE = _s(
    K.RELAPSE,
    """The benefit often fades within weeks after a course ends, and relapse is common. In one study half of
    the patients had relapsed 18 days after the last of six infusions (median); in community clinics about 8 in
    10 of those who responded still felt the benefit 4 weeks later, and about 6 in 10 after 8 weeks. Further
    ("maintenance") sessions are sometimes offered; there is no agreed standard for them, and your prescriber
    reviews with you at the end of the first course whether to continue.""",
    "clinical.md §1.4 (Murrough 2013: median relapse 18 days; McInnes 2022: ~80 %/60 % at 4/8 weeks; no "
    "validated maintenance), §9.3, §11 (relapse common within weeks; end-of-induction review)",
)

_KETAMINE_ALTERNATIVES = _s(
    K.ALTERNATIVES,
    """Other treatments for depression include changing or adding antidepressant medicines, psychotherapy,
    electroconvulsive therapy (ECT; in a trial comparing the two, ketamine infusions were not worse than ECT),
    and esketamine nasal spray (SPRAVATO), which is FDA-approved for treatment-resistant depression. You may
    also choose not to have this treatment. Your prescriber will talk with you about which of these suit you.""",
    "clinical.md §6.1 (CPSBC, APNA: ketamine after standard treatment), §6.3, §9.1 (ELEKT-D: ketamine vs "
    "ECT), §2 (esketamine)",
)

_STOPPING = _s(
    K.STOPPING,
    """Having this treatment is your choice. You may stop treatment, miss a session or withdraw this consent at
    any time, before or during a session, and it will not affect the rest of your care. Tell any member of the
    clinic's staff; they record it on your chart, and no further dose is given unless you sign a new consent.
    This consent lasts until the date shown when you sign it (clinic policy), unless you withdraw it sooner.""",
    "clinical.md §11 (the right to stop); the validity period is clinic policy (unconfirmed)",
)

_QUESTIONS = _s(
    K.QUESTIONS,
    """Please ask the nurse or your prescriber about anything on this form before you sign. You may ask for a
    printed copy of what you sign.""",
    "clinical.md §11 (documented informed consent); §6.1 (ASKP3, CPSBC)",
)

_RISKS_COMMON = """During and shortly after each dose most people feel strange, detached or unreal
    (dissociation); dizziness, nausea or vomiting, sleepiness (sedation), headache and anxiety are common. These
    usually pass within about an hour or two. Blood pressure and pulse rise, most around 30–40 minutes after the
    start: in one large clinic series the average rise was 16/11 mmHg and 1 patient in 8 had a severe rise at
    least once (about 1 session in 100), more often older people and those with high blood pressure; it returns
    to your usual level within about an hour and a half after the infusion."""

_RISKS_SERIOUS = """Less common or serious: distressing experiences or confusion as it wears off; breathing
    problems (rare at these doses); bladder inflammation (cystitis) with frequent or long-term use (tell us about
    pain or passing urine often); misuse and dependence (ketamine is a controlled drug with abuse potential); in
    bipolar disorder, a switch into mania. It is not recommended in pregnancy or while breastfeeding: tell us if
    you are or may become pregnant."""

_RISKS_SOURCE = (
    "clinical.md §7.2 (Yale: +16.0/+11.0 mmHg at 40 min, severe hypertension in 12.5 % of patients and 0.98 % "
    "of sessions; age and hypertension; back to baseline within 1.5 h, Szarmach 2020), §2.5 (cystitis, "
    "abuse/misuse, pregnancy, breastfeeding), §2.6 (dissociation, dizziness, nausea, sedation; resolve by "
    "1.5 h), §7.4 (emergence reactions; apnea with rapid IV bolus), §5.2 (mania), §11"
)


def _monitoring(how: str, cadence: str, source: str) -> Section:
    return _s(
        K.MONITORING,
        f"""A nurse stays with you. {how} Your blood pressure, pulse and oxygen level are checked before the
        dose, {cadence} and afterwards until you have recovered and a clinician judges you well enough to leave.
        If your blood pressure is above 140/90 before the dose, a prescriber decides whether to go ahead; at
        180/110 or above no dose is given until a prescriber decides. You must have an adult to take you home
        (escort). Do not drive, cycle or operate machinery until the next day after a restful sleep.""",
        "clinical.md §11 (pre-dose BP: 140/90 prescriber decision, 180/110 stop, clinic default), §2.3 and §7.5 "
        f"(ride home; no driving until the next day), {source}",
    )


KETAMINE_IV = FormText(
    drug="ketamine",
    route="iv",
    title="Consent to ketamine (racemic) treatment by intravenous infusion",
    sections=(
        _s(
            K.TREATMENT,
            """Ketamine (racemic ketamine), given as a slow infusion into a vein through a small cannula in
            your arm. The usual dose is 0.5 mg for each kilogram of body weight over about 40 minutes; your
            prescriber sets your dose within the limits written in your treatment plan. A first course is
            usually 4 to 8 infusions over 2 to 4 weeks, for example twice a week for 3 weeks.""",
            "clinical.md §1.1 (0.5 mg/kg over 40 min), §1.3 (induction schedules), §11 (dose limits)",
        ),
        _OFF_LABEL,
        _s(
            K.BENEFIT,
            _IV_BENEFIT_FIGURES
            + """ Higher figures seen in advertising come from small studies without a comparison group.
            It may not work for you.""",
            _BENEFIT_SOURCE,
        ),
        _KETAMINE_RELAPSE,
        _s(K.RISKS, _RISKS_COMMON + " " + _RISKS_SERIOUS, _RISKS_SOURCE),
        _KETAMINE_ALTERNATIVES,
        _monitoring(
            "The infusion runs through a pump at a checked rate.",
            "about every 10 to 15 minutes during the infusion",
            "§7.1 (BP every 10 min during infusion, every 15 after; pulse oximetry)",
        ),
        _STOPPING,
        _QUESTIONS,
    ),
)

KETAMINE_IM = FormText(
    drug="ketamine",
    route="im",
    title="Consent to ketamine (racemic) treatment by intramuscular injection",
    sections=(
        _s(
            K.TREATMENT,
            """Ketamine (racemic ketamine), given as an injection into a muscle (intramuscular), usually in
            the upper arm or thigh. Almost all of the dose reaches the blood, and its effect starts within
            minutes, peaking about 5 to 15 minutes after the injection. There is no standard intramuscular dose
            for depression: your prescriber sets your dose by your weight, within the limits written in your
            treatment plan.""",
            "clinical.md §3.1 (IM bioavailability ~93 %), §3.2 (IM doses in psychiatry unconfirmed; "
            "0.1–0.5 mg/kg in a dose-titration study), pk.md §1d (Cmax 5–15 min), §11 (dose limits)",
        ),
        _OFF_LABEL,
        _s(
            K.BENEFIT,
            """Most evidence for ketamine in depression comes from infusions into a vein; injections into a
            muscle have been reported as safe and effective in smaller studies, without large controlled
            trials. """
            + _IV_BENEFIT_FIGURES
            + """ It may not work for you.""",
            _BENEFIT_SOURCE + "; §3.2 (Andrade 2017: IM/SC bolus safe and effective)",
        ),
        _KETAMINE_RELAPSE,
        _s(
            K.RISKS,
            _RISKS_COMMON.replace("after the infusion", "after the injection")
            + " Because an injection is absorbed quickly, these effects can start sooner than with an "
            "infusion. " + _RISKS_SERIOUS,
            _RISKS_SOURCE + "; pk.md §1d (IM Cmax 5–15 min)",
        ),
        _KETAMINE_ALTERNATIVES,
        _monitoring(
            "The injection is checked by a second member of staff before it is given.",
            "every 10 minutes for the first hour after the injection, then every 15 minutes,",
            "§7.1 (clinics every 10–15 min); IM cadence clinic default, unconfirmed (clinical/vitals.py)",
        ),
        _STOPPING,
        _QUESTIONS,
    ),
)

KETAMINE_SUBLINGUAL = FormText(
    drug="ketamine",
    route="sublingual",
    title="Consent to ketamine (racemic) treatment under the tongue (sublingual)",
    sections=(
        _s(
            K.TREATMENT,
            """Ketamine (racemic ketamine) held under the tongue (sublingual) for several minutes and then
            swallowed, here in the clinic. Only about 30 % of the dose reaches the blood this way, and the
            amount varies from person to person; it takes effect over 15 to 60 minutes. Your prescriber sets
            your dose within the limits written in your treatment plan. Ketamine given this way is often made up
            by a pharmacy (compounded).""",
            "clinical.md §3.1 (SL bioavailability ~30 %, Chong 2006), §3.2 (Lara 2013: 10 mg held 5 min), "
            "§3.3 (compounded ketamine), pk.md §1d (SL Tmax 15–60 min), §11 (dose limits)",
        ),
        _s(
            K.OFF_LABEL,
            _OFF_LABEL.text
            + """ The FDA has also warned that compounded ketamine is not FDA-approved for any psychiatric
            condition and is not covered by a safety programme (REMS).""",
            _OFF_LABEL.source + "; §3.3 (FDA warning on compounded ketamine, 2022–2023)",
        ),
        _s(
            K.BENEFIT,
            """Evidence for ketamine under the tongue comes from small studies without a comparison group, and
            its effect may differ from an infusion. """
            + _IV_BENEFIT_FIGURES
            + """ It may not work for you.""",
            _BENEFIT_SOURCE + "; §9.3 (Hull 2022 sublingual: open-label, self-report, no control)",
        ),
        _KETAMINE_RELAPSE,
        _s(
            K.RISKS,
            _RISKS_COMMON.replace("after the infusion", "after the dose").replace(
                "after the start", "after the dose"
            )
            + " Nausea is common when ketamine is swallowed. "
            + _RISKS_SERIOUS,
            _RISKS_SOURCE,
        ),
        _KETAMINE_ALTERNATIVES,
        _monitoring(
            "You take the dose in the clinic, in front of the nurse.",
            "every 15 minutes after the dose",
            "§7.1 (clinics every 10–15 min); sublingual cadence clinic default, unconfirmed (clinical/vitals.py)",
        ),
        _STOPPING,
        _QUESTIONS,
    ),
)

ESKETAMINE_INTRANASAL = FormText(
    drug="esketamine",
    route="intranasal",
    title="Consent to esketamine (SPRAVATO) nasal spray treatment",
    sections=(
        _s(
            K.TREATMENT,
            """Esketamine nasal spray (SPRAVATO). You spray it into your own nose here in the clinic while
            staff watch. Each device holds 28 mg in two sprays, one for each nostril; a dose is 56 mg or 84 mg
            (two or three devices, 5 minutes apart). It is usually given twice a week for the first 4 weeks,
            then once a week, then once a week or every 2 weeks. It is FDA-approved for treatment-resistant
            depression and for depressive symptoms with acute suicidal thoughts or behaviour. It is given only
            in a certified clinic under the SPRAVATO REMS safety programme, in which you must be enrolled, and
            is never taken home.""",
            "clinical.md §2.1 (label dosing; 28 mg devices, 5 minutes apart), §2.4 (REMS: certified setting, "
            "patient enrolment, never dispensed for home use), §2 (approvals)",
        ),
        _s(
            K.BENEFIT,
            """In the controlled trials, about half of the patients responded after 4 weeks, meaning their
            depression score fell by at least half: 54 % with 56 mg and 53 % with 84 mg, against 39 % with a
            placebo spray and a new antidepressant (TRANSFORM-1). Remission, when symptoms have mostly gone, was
            reached by 36–39 %, against 31 %. It may not work for you: at the end of the first 4 weeks your
            prescriber reviews with you whether it is helping, to decide whether to continue.""",
            "clinical.md §9.2 (TRANSFORM-1, PMC7894501), §9.3 (present ~45–55 %), §2.1 (evaluate benefit at "
            "the end of induction)",
        ),
        _s(
            K.RELAPSE,
            """Improvement often does not last when treatment stops, and relapse is common. Among people who
            were in remission and then stopped esketamine, 45 % relapsed, against 27 % of those who continued
            it (SUSTAIN-1). Most people who benefit continue with sessions every 1 to 2 weeks.""",
            "clinical.md §9.2 (SUSTAIN-1, Daly 2019: relapse 26.7 % vs 45.3 %), §2.1 (maintenance)",
        ),
        _s(
            K.RISKS,
            """Common, in the trials (esketamine against placebo): feeling detached or unreal (dissociation,
            41 % against 9 %), dizziness (29 %), nausea (28 %), sleepiness (sedation, 23 %), a spinning feeling
            (vertigo, 23 %), headache, a strange taste, numbness, anxiety and vomiting (9 %). These generally
            start soon after the dose and pass within about an hour and a half. Blood pressure rises, peaking
            about 40 minutes after the dose and lasting up to about 4 hours: a large rise (the top number up by
            40 mmHg or more) happened in 8–19 % of patients, against 1–4 % with placebo. Serious but less
            common: deep sedation and, rarely, loss of consciousness (about 3 or 4 in 1,000); slowed breathing
            (respiratory depression); misuse and dependence (esketamine is a controlled drug with abuse
            potential); in people aged 24 or younger, antidepressants can increase suicidal thoughts; bladder
            problems (cystitis: tell us about pain or passing urine often); it affects attention and driving.
            It is not recommended in pregnancy or while breastfeeding. It must not be used if you have an
            aneurysm or an arteriovenous malformation, have had bleeding in the brain, or are allergic to
            esketamine or ketamine.""",
            "clinical.md §2.6 (label adverse-reaction table; BP rise ≥40/≥25 mmHg in 8–19 % vs 1–4 %; "
            "MOAA/S 0 in 0.3–0.4 %; AEs resolve by 1.5 h), §2.5 (boxed warning, contraindications, "
            "warnings), §11",
        ),
        _s(
            K.ALTERNATIVES,
            """Other treatments for depression include changing or adding antidepressant medicines,
            psychotherapy and electroconvulsive therapy (ECT); some clinics also offer racemic ketamine, which is
            not FDA-approved for depression. You may also choose not to have this treatment. Your prescriber
            will talk with you about which of these suit you.""",
            "clinical.md §6.3 (TRD after ≥2 antidepressants), §9.1 (ECT; racemic ketamine), §3.3 (racemic "
            "ketamine not FDA-approved)",
        ),
        _s(
            K.MONITORING,
            """Before each dose: no food for 2 hours and no drinks for 30 minutes; use any nasal
            corticosteroid or decongestant at least 1 hour before. We check your blood pressure before the dose
            (if it is above 140/90 a prescriber decides whether to go ahead), about 40 minutes after it and
            until it has settled, and your oxygen level with a finger clip. You stay in the clinic for at least 2
            hours after the dose, until a clinician judges that you are stable. You must have someone to take
            you home (escort). Do not drive or operate machinery until the next day after a restful sleep.""",
            "clinical.md §2.2 (fasting, nasal products 1 h before, BP >140/90), §2.3 (BP at ~40 min, pulse "
            "oximetry, ≥2 h observation, ride home, no driving until the next day), §2.4 (REMS), §11",
        ),
        _STOPPING,
        _QUESTIONS,
    ),
)

BUILTIN_FORMS: Final[Mapping[tuple[str, str], FormText]] = {
    (form.drug, form.route): form
    for form in (ESKETAMINE_INTRANASAL, KETAMINE_IV, KETAMINE_IM, KETAMINE_SUBLINGUAL)
}

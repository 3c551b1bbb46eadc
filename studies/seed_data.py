"""Seed data for OligoCRF studies, transcribed from the registry pages in shared/seeds.

Source files (all under ``shared/seeds/``):

* ``000_43259fb5fb180e3b.txt`` -- GETUG-StORM-01, NCT04299646 (single-arm phase II,
  stereotactic radiotherapy for oligoprogressive metastatic renal cell carcinoma).
* ``001_db5a3ac01f9f9497.txt`` -- the randomised phase II follow-up of StORM-01
  (short French registry entry: "Ouvert depuis le: 11.30.2022, Site: Paris"; no
  registry number on the page).
* ``002_5d48d5080ca267dd.txt`` -- STEREOSARC, NCT03548428 (randomised phase II,
  SBRT +/- atezolizumab in oligometastatic sarcoma).
* ``003_aa0cbde46e5d5f38.txt`` -- Gustave Roussy SBRT +/- ATRA phase I/II,
  NCT06439888.
* ``004_935f8caceb9e97e7.txt`` -- STOP-2, NCT06918951 (randomised, double-blind,
  SABR vs palliative conventional radiotherapy for oligoprogression).

Fields that a page does not state are ``None`` or empty (``""`` / ``()``) rather
than invented; every assumption that was made anyway is written down in the
trial's ``notes``.  Criteria texts are verbatim from the pages, with markdown
escapes removed ("\\<" -> "<", "\\>" -> ">", "\\[" -> "[", "\\]" -> "]").  Where a
page marks sub-items of a criterion, they are appended to the parent
criterion's text on new lines.

Standard library only; this module has no Django dependency.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BLINDINGS",
    "DESIGNS",
    "PHASES",
    "RECRUITMENT_STATUSES",
    "SEED_TRIALS",
    "SeedArm",
    "SeedCriterion",
    "SeedSite",
    "SeedTrial",
]

RECRUITMENT_STATUSES: tuple[str, ...] = (
    "NOT_YET_RECRUITING",
    "RECRUITING",
    "ACTIVE_NOT_RECRUITING",
    "COMPLETED",
    "SUSPENDED",
    "TERMINATED",
    "WITHDRAWN",
    "UNKNOWN",
)
PHASES: tuple[str, ...] = ("PHASE1", "PHASE1_2", "PHASE2", "PHASE3", "NA")
DESIGNS: tuple[str, ...] = ("single_arm", "randomised", "run_in_randomised")
BLINDINGS: tuple[str, ...] = ("open", "double_blind")


@dataclass(frozen=True)
class SeedArm:
    code: str  # short code, e.g. "A", "B", "SBRT", "SBRT_ATRA", "CONTROL", "SABR"
    name: str  # name as on the registry page
    description: str  # interventions as on the page (verbatim where possible)
    allocation_weight: int = 1


@dataclass(frozen=True)
class SeedSite:
    institution: str  # exactly as on the page (accents and capitalisation as written)
    city: str
    country: str
    recruitment_status: str  # one of RECRUITMENT_STATUSES; "UNKNOWN" if no per-site status


@dataclass(frozen=True)
class SeedCriterion:
    kind: str  # "inclusion" or "exclusion"
    number: int  # 1-based order within its kind
    text: str  # verbatim text as on the page (markdown escapes removed)


@dataclass(frozen=True)
class SeedTrial:
    code: str  # our study code
    acronym: str  # "" if the page gives none
    title: str  # official title, verbatim; "" if the page gives none
    registry_id: str  # e.g. "NCT04299646"; "" if the page gives none
    other_ids: tuple[str, ...]
    phase: str  # one of PHASES
    design: str  # one of DESIGNS
    blinding: str  # one of BLINDINGS
    target_enrolment: int | None
    status: str  # registry overall status, one of RECRUITMENT_STATUSES
    start_date: str | None  # ISO "YYYY-MM-DD"
    completion_date: str | None
    sponsor: str  # lead sponsor; "" if the page gives none
    collaborators: tuple[str, ...]
    condition: str
    # NOTE: ``int | None`` rather than ``int``: two pages (001, 003) state no
    # minimum age, and inventing one would contradict the rule above.
    min_age: int | None
    primary_endpoint: str  # "" if the page gives none
    arms: tuple[SeedArm, ...]
    sites: tuple[SeedSite, ...]
    criteria: tuple[SeedCriterion, ...]
    notes: str
    source_file: str


# ---------------------------------------------------------------------------
# 000 -- GETUG-StORM-01, NCT04299646
# ---------------------------------------------------------------------------
STORM_01 = SeedTrial(
    code="STORM-01",
    acronym="GETUG-StORM-01",
    title=(
        "A Phase II Study Assessing Stereotactic Radiotherapy in Therapeutic "
        "Strategy of Oligoprogressive Renal Cell Carcinoma Metastases"
    ),
    registry_id="NCT04299646",
    other_ids=("GETUG-StORM-01",),
    phase="PHASE2",
    design="single_arm",
    blinding="open",
    target_enrolment=77,
    status="RECRUITING",
    start_date="2020-07-01",
    completion_date="2029-08-31",
    sponsor="Centre Francois Baclesse",
    collaborators=("National Cancer Institute, France", "GETUG"),
    condition="Oligoprogressive metastatic clear-cell renal cell carcinoma",
    min_age=18,
    primary_endpoint="",
    arms=(
        SeedArm(
            code="SBRT",
            name="Steretactic radiotherapy plus systemic treatment",
            description="Radiation: Steretactic radiotherapy",
            allocation_weight=1,
        ),
    ),
    sites=(
        SeedSite("Clinique Claude Bernard", "Albi", "France", "NOT_YET_RECRUITING"),
        SeedSite("Institut de Cancérologie de l'Ouest", "Angers", "France", "RECRUITING"),
        SeedSite("Institut Bergonié", "Bordeaux", "France", "NOT_YET_RECRUITING"),
        SeedSite(
            "Radiothérapie Bordeaux Nord Aquitaine",
            "Bordeaux",
            "France",
            "NOT_YET_RECRUITING",
        ),
        SeedSite("Centre François Baclesse", "Caen", "France", "RECRUITING"),
        SeedSite("Centre Jean Perrin", "Clermont-Ferrand", "France", "NOT_YET_RECRUITING"),
        SeedSite("CHU Henri Mondor", "Créteil", "France", "NOT_YET_RECRUITING"),
        SeedSite("Centre Georges François LECLERC", "Dijon", "France", "NOT_YET_RECRUITING"),
        SeedSite(
            "Institut de cancérologie de Bourgogne (Dijon, Auxerre, Chalon sur Saône)",
            "Dijon",
            "France",
            "RECRUITING",
        ),
        SeedSite("CHD Vendée", "La Roche-sur-Yon", "France", "NOT_YET_RECRUITING"),
        SeedSite(
            "Centre de radiothérapie Guillaume le Conquérant",
            "Le Havre",
            "France",
            "NOT_YET_RECRUITING",
        ),
        SeedSite("Centre Oscar Lambret", "Lille", "France", "RECRUITING"),
        SeedSite("Centre Léon Bérard", "Lyon", "France", "NOT_YET_RECRUITING"),
        SeedSite("CHU La Timone", "Marseille", "France", "NOT_YET_RECRUITING"),
        SeedSite("Institut Paoli Calmette", "Marseille", "France", "NOT_YET_RECRUITING"),
        SeedSite("CHR", "Metz", "France", "NOT_YET_RECRUITING"),
        SeedSite("ICM", "Montpellier", "France", "NOT_YET_RECRUITING"),
        SeedSite(
            "Institut de Cancérologie de Lorraine",
            "Nancy",
            "France",
            "NOT_YET_RECRUITING",
        ),
        SeedSite("Institut de Cancérologie de l'Ouest", "Nantes", "France", "RECRUITING"),
        SeedSite("Centre Antoine Lacassagne", "Nice", "France", "NOT_YET_RECRUITING"),
        SeedSite("Centre Haute Energie", "Nice", "France", "NOT_YET_RECRUITING"),
        SeedSite("Institut Curie", "Paris", "France", "NOT_YET_RECRUITING"),
        SeedSite(
            "Groupement de radiothérapie Oncologie des Pyrénées",
            "Pau",
            "France",
            "NOT_YET_RECRUITING",
        ),
        SeedSite(
            "Centre Hospitalier Annecy Genevois",
            "Pringy",
            "France",
            "NOT_YET_RECRUITING",
        ),
        SeedSite("Centre Henri Becquerel", "Rouen", "France", "NOT_YET_RECRUITING"),
        SeedSite(
            "Institut de Cancérologie de la Loire Lucien Neuwirth",
            "Saint-Etienne",
            "France",
            "NOT_YET_RECRUITING",
        ),
        SeedSite("Polyclinique de l'Ormeau", "Tarbes", "France", "RECRUITING"),
        SeedSite("IUCT", "Toulouse", "France", "NOT_YET_RECRUITING"),
        SeedSite("Centre marie Curie", "Valence", "France", "RECRUITING"),
        SeedSite("Institut Gustave Roussy", "Villejuif", "France", "RECRUITING"),
    ),
    criteria=(
        SeedCriterion(
            "inclusion",
            1,
            "Clear cell renal cancer histologically proved (association with other histologic component are permitted)",
        ),
        SeedCriterion(
            "inclusion",
            2,
            "Patients of good or intermediate prognostic, according to Heng criteria",
        ),
        SeedCriterion("inclusion", 3, "Extracerebral metastatic disease documented with imagery"),
        SeedCriterion("inclusion", 4, "Patients treated in first or second line systemic therapy"),
        SeedCriterion(
            "inclusion",
            5,
            "Systemic treatment may be targeted therapies (tyrosine kinase inhibitors or mammalian target of rapamycin inhibitors) and/or immunotherapy according to French applicable standards; patients treated in a clinical trial are also eligible if allowed by trial sponsor",
        ),
        SeedCriterion(
            "inclusion",
            6,
            "Oligoprogressive disease documented with imagery, defined as the emergence or progression of 1 to 3 metastases and progression localized in up to 2 organs",
        ),
        SeedCriterion(
            "inclusion",
            7,
            "Oligoprogressive disease confirmed with 2 CT scans performed 2 months apart",
        ),
        SeedCriterion(
            "inclusion",
            8,
            "At least one measurable progressing metastasis according to R.E.C.I.S.T. criteria v1.1",
        ),
        SeedCriterion("inclusion", 9, "All oligoprogressive target lesions measuring ≤ 4 cm"),
        SeedCriterion("inclusion", 10, "Good general condition (WHO performance status ≤ 2)"),
        SeedCriterion(
            "inclusion",
            11,
            "All progressive lesions have to be accessible to SRT, performed concurrently or sequentially",
        ),
        SeedCriterion(
            "inclusion",
            12,
            "No contraindication to systemic therapy and stereotactic radiation therapy",
        ),
        SeedCriterion("inclusion", 13, "Patients aged 18 years or older"),
        SeedCriterion("inclusion", 14, "Signed informed consent form"),
        SeedCriterion("inclusion", 15, "Patients affiliated to the social security system"),
        SeedCriterion("exclusion", 1, "More than 3 progressive metastases"),
        SeedCriterion("exclusion", 2, "Non measurable disease according R.E.C.I.S.T. criteria"),
        SeedCriterion("exclusion", 3, "Patients who received 3 or more lines of systemic therapy"),
        SeedCriterion(
            "exclusion",
            4,
            "Inability to treat all progressive metastatic sites with SRT",
        ),
        SeedCriterion("exclusion", 5, "Previous radiation therapy performed in ≥ 1 target lesion"),
        SeedCriterion("exclusion", 6, "At least 1 oligoprogressive target lesion measuring > 4 cm"),
        SeedCriterion("exclusion", 7, "Presence of brain metastases"),
        SeedCriterion("exclusion", 8, "Presence of ultra-central pulmonary metastasis"),
        SeedCriterion("exclusion", 9, "Progressing metastasis in a long bone"),
        SeedCriterion(
            "exclusion",
            10,
            "At least 1 progressive metastasis requiring surgical treatment",
        ),
        SeedCriterion(
            "exclusion",
            11,
            "Current or past history of second neoplasm diagnosed within the last 5 years",
        ),
        SeedCriterion(
            "exclusion",
            12,
            "Pregnancy or breast feeding or inadequate contraceptive measures",
        ),
        SeedCriterion("exclusion", 13, "Patients who cannot be adequately followed up"),
        SeedCriterion("exclusion", 14, "Patient deprived of freedom or under guardianship"),
    ),
    notes=(
        "Registry page last updated 2026-01-13. Allocation NA, intervention model "
        "SINGLE_GROUP ('Non randomized phase II trial'), masking NONE. "
        "The page states no primary outcome/endpoint (no outcome-measures section), "
        "so primary_endpoint is empty; the brief summary only says the aim is to "
        "evaluate SRT for local control of oligoprogressive metastatic RCC under "
        "ongoing systemic treatment and to delay subsequent systemic treatment. "
        "Arm name and intervention are copied as written, including the page's "
        "spelling 'Steretactic'; the page lists only the radiation intervention "
        "(the systemic treatment is the patient's ongoing line, not a study drug). "
        "The page lists its sponsor as 'Centre Francois Baclesse' (no cedilla) while "
        "the Caen site is written 'Centre François Baclesse'; both kept as written. "
        "Site names are kept as written, including 'Institut Paoli Calmette' and "
        "'Centre marie Curie'; 'Institut de Cancérologie de l'Ouest' appears twice "
        "(Angers and Nantes) and both entries are kept. 30 locations, each with a "
        "per-site status on the page. The page has 15 inclusion and 14 exclusion "
        "criteria (the file is complete; no criterion is split or truncated in it). "
        "Condition on the page: 'Metastatic Renal Cell Carcinoma Radiotherapy'; the "
        "clear-cell and oligoprogressive qualifiers come from the inclusion criteria."
    ),
    source_file="000_43259fb5fb180e3b.txt",
)

# ---------------------------------------------------------------------------
# 001 -- randomised phase II follow-up of StORM-01 (no registry number)
# ---------------------------------------------------------------------------
STORM_01_R = SeedTrial(
    code="STORM-01-R",
    acronym="",
    title=(
        "A Randomized Phase II Study Assessing Stereotactic Radiotherapy in "
        "Therapeutic Strategy of Oligoprogressive Renal Cell Carcinoma Metastases."
    ),
    registry_id="",
    other_ids=(),
    phase="PHASE2",
    design="randomised",
    blinding="open",
    target_enrolment=None,
    status="RECRUITING",
    start_date="2022-11-30",
    completion_date=None,
    sponsor="",
    collaborators=(),
    condition="Oligoprogressive metastatic renal cell carcinoma",
    min_age=None,
    primary_endpoint="",
    arms=(
        SeedArm(
            code="SBRT",
            name="Stereotactic radiotherapy plus ongoing systemic treatment",
            description="",
            allocation_weight=1,
        ),
        SeedArm(
            code="STANDARD",
            name="Standard of care: next systemic treatment line",
            description="",
            allocation_weight=1,
        ),
    ),
    sites=(
        SeedSite(
            "Site in Paris (institution not named in the registry entry)",
            "Paris",
            "France",
            "RECRUITING",
        ),
    ),
    criteria=(),
    notes=(
        "Very short French registry entry: 'Ouvert depuis le: 11.30.2022', "
        "'Site: Paris', the title and the same brief summary as StORM-01. "
        "The date is read as MM.DD.YYYY (30 cannot be a month), giving start "
        "2022-11-30; status RECRUITING is inferred from 'Ouvert depuis le' (open "
        "since). The entry gives no registry number, no acronym, no sponsor or "
        "collaborators, no enrolment target, no completion date, no minimum age, "
        "no primary endpoint, no eligibility criteria, no masking and no arm "
        "descriptions or allocation ratio. It is identified as the randomised "
        "follow-up of StORM-01 from its title and summary. ARM DEFINITIONS ARE "
        "ASSUMED from the StORM-01 design (SBRT while continuing the ongoing "
        "systemic line vs. standard switch to the next systemic line) because the "
        "entry does not describe them; the 1:1 weights and the open-label blinding "
        "are likewise assumptions, not stated in the entry. The Paris site's "
        "institution is not named. Condition: the entry says renal cell carcinoma "
        "without specifying clear-cell histology."
    ),
    source_file="001_db5a3ac01f9f9497.txt",
)

# ---------------------------------------------------------------------------
# 002 -- STEREOSARC, NCT03548428
# ---------------------------------------------------------------------------
STEREOSARC = SeedTrial(
    code="STEREOSARC",
    acronym="STEREOSARC",
    title="Stereotaxic Body Irradiation of Oligometastase in Sarcoma (Stereosarc)",
    registry_id="NCT03548428",
    other_ids=("2017_16",),
    phase="PHASE2",
    design="randomised",
    blinding="open",
    target_enrolment=103,
    status="RECRUITING",
    start_date="2020-06-04",
    completion_date="2031-02-04",
    sponsor="Centre Antoine Lacassagne",
    collaborators=("Centre Hospitalier Universitaire de Caen", "Roche Pharma AG"),
    condition="Oligometastatic soft-tissue sarcoma",
    min_age=18,
    primary_endpoint=(
        "The primary objective is to evaluate the efficacy, in term of "
        "progression-free survival (PFS) rate at 6 months, of immunomodulated "
        "stereotactic irradiation in oligometastatic sarcoma patients."
    ),
    arms=(
        SeedArm(
            code="A",
            name="SBRT + Atezolizumab",
            description=(
                "Atezolizumab: 1200mg IV every 3 weeks for 4 months\n"
                "SBRT: 3 to 5 fractions depending on tumor size"
            ),
            allocation_weight=1,
        ),
        SeedArm(
            code="B",
            name="SBRT",
            description="SBRT: 3 to 5 fractions depending on tumor size",
            allocation_weight=1,
        ),
    ),
    sites=(
        SeedSite("Institut Bergonié", "Bordeaux", "France", "UNKNOWN"),
        SeedSite("Centre François BACLESSE", "Caen", "France", "UNKNOWN"),
        SeedSite("Centre Georges François LECLERC", "Dijon", "France", "UNKNOWN"),
        SeedSite("Centre Oscar LAMBRET", "Lille", "France", "UNKNOWN"),
        SeedSite("Centre Léon BERARD", "Lyon", "France", "UNKNOWN"),
        SeedSite("AP-HM CHU La Timone", "Marseille", "France", "UNKNOWN"),
        SeedSite("Institut Paoli CALMETTES", "Marseille", "France", "UNKNOWN"),
        SeedSite(
            "Institut de cancérologie de Montpellier",
            "Montpellier",
            "France",
            "UNKNOWN",
        ),
        SeedSite("Centre Antoine LACASSAGNE", "Nice", "France", "UNKNOWN"),
        SeedSite("APHP La Pitié", "Paris", "France", "UNKNOWN"),
        SeedSite("CHU de Poitiers", "Poitiers", "France", "UNKNOWN"),
        SeedSite("Centre Eugene MARQUIS", "Rennes", "France", "UNKNOWN"),
        SeedSite("Centre Henri BECQUEREL", "Rouen", "France", "UNKNOWN"),
        SeedSite(
            "Institut de cancérologie Strasbourg Europe",
            "Strasbourg",
            "France",
            "UNKNOWN",
        ),
        SeedSite("Institut Claudius REGAUD", "Toulouse", "France", "UNKNOWN"),
        SeedSite(
            "Institut de Cancérologie de Lorraine",
            "Vandœuvre-lès-Nancy",
            "France",
            "UNKNOWN",
        ),
        SeedSite("Institut Gustave ROUSSY", "Villejuif", "France", "UNKNOWN"),
    ),
    criteria=(
        SeedCriterion("inclusion", 1, "Progressive disease according to RECIST 1.1 criteria,"),
        SeedCriterion(
            "inclusion",
            2,
            "Metastatic disease (1-5 synchronous macroscopic metastases by chest and abdominopelvic CT, maximal cumulated diameter 10 cm); any anatomic site",
        ),
        SeedCriterion("inclusion", 3, "First or second metastatic line"),
        SeedCriterion("inclusion", 4, "Be ≥ 18 years of age on day of signing informed consent."),
        SeedCriterion(
            "inclusion",
            5,
            "Have a performance status of 0 or 1 on the ECOG Performance Scale.",
        ),
        SeedCriterion(
            "inclusion",
            6,
            "Have at least one lesion mesurable by RECIST 1.1 for irradiation with a size of < 5 cm.",
        ),
        SeedCriterion(
            "inclusion",
            7,
            "Demonstrate adequate organ function: Absolute neutrophil count (ANC) ≥1,500 /mcL; Platelets ≥100,000 / mcL; Hemoglobin ≥9 g/dL or ≥5.6 mmol/L; Serum creatinine ≤1.5 X upper limit of normal (ULN) OR measured or calculated creatinine clearance (GFR can also be used in place of creatinine or CrCl) ≥50 mL/min for subject with creatinine levels > 1.5 X institutional ULN; Serum total bilirubin ≤ 1.5 X ULN OR Direct bilirubin ≤ ULN for subjects with total bilirubin levels > 1.5 ULN; AST (SGOT) and ALT (SGPT) ≤ 2.5 X ULN OR ≤ 5 X ULN for subjects with liver metastases. All screening labs should be performed within 15 days of treatment initiation.",
        ),
        SeedCriterion(
            "inclusion",
            8,
            "Female subjects of childbearing potential should have a negative urine or serum pregnancy test within 72 hours prior to receiving the first dose of study medication. If the urine test is positive or cannot be confirmed as negative, a serum pregnancy test will be required. Female subjects of childbearing potential should be willing to use 2 methods of birth control or be surgically sterile, or abstain from heterosexual activity for the course of the study through 120 days after the last dose of study medication. Subjects of childbearing potential are those who have not been surgically sterilized or have not been free from menses for > 1 year. Male subjects should agree to use an adequate method of contraception starting with the first dose of study therapy through 120 days after the last dose of study therapy.",
        ),
        SeedCriterion(
            "inclusion",
            9,
            "Surgical ablation (or other ablative methods such as thermal ablative methods) remains possible if needed before SBRT, at least 4 weeks before randomisation and provided that at least one lesion needs to be treated by SBRT.",
        ),
        SeedCriterion(
            "inclusion",
            10,
            "FFPE Tumor tissue collected before SBRT is available for immunohistochemistry (optional)",
        ),
        SeedCriterion(
            "inclusion",
            11,
            "Archival metastatic biopsy blocks (or slides) on paraffin embedded samples available. If no archival material is available, a fresh biopsy should be performed if possible.",
        ),
        SeedCriterion(
            "inclusion",
            12,
            "Be willing and able to provide written informed consent/assent for the trial.",
        ),
        SeedCriterion("inclusion", 13, "affiliated with a health insurance system."),
        SeedCriterion(
            "exclusion",
            1,
            "Has a diagnosis of immunodeficiency or is receiving systemic steroid therapy or any other form of immunosuppressive therapy within 7 days prior to the first dose of trial treatment.",
        ),
        SeedCriterion(
            "exclusion",
            2,
            "Has had a prior monoclonal antibody within 4 weeks prior to randomisation or has not recovered (i.e., ≤ Grade 1 or at baseline) from adverse events due to agents administered more than 4 weeks earlier.",
        ),
        SeedCriterion(
            "exclusion",
            3,
            "Has had prior chemotherapy or targeted small molecule therapy within 4 weeks prior to randomisation or who has not recovered (i.e. ≤ Grade 1 or at baseline) from adverse events due to a previously administered agent (Subjects with ≤ Grade 2 neuropathy are an exception to this criterion and may qualify for the study). If subjects received major surgery, they must have recovered adequately from the toxicity and/or complications from the intervention prior to starting therapy.",
        ),
        SeedCriterion(
            "exclusion",
            4,
            "Have had previous radical radiation to any tumour site within 4 weeks prior to randomisation",
        ),
        SeedCriterion(
            "exclusion",
            5,
            "Have had previous ablative treatment within 4 weeks prior to randomisation (radiofrequency, surgery)",
        ),
        SeedCriterion(
            "exclusion",
            6,
            "Has a tumour within 5 mm of the spinal cord (owing to rare reported cases of flare-up after initiation of immunotherapy)",
        ),
        SeedCriterion(
            "exclusion",
            7,
            "Has a known additional malignancy that is progressing or requires active treatment. Exceptions include basal cell carcinoma of the skin, squamous cell carcinoma of the skin, or in situ cervical cancer that has undergone potentially curative therapy.",
        ),
        SeedCriterion(
            "exclusion",
            8,
            "Has an active autoimmune disease requiring systemic treatment within the past 3 months or a documented history of clinically severe autoimmune disease, or a syndrome that requires systemic steroids or immunosuppressive agents. Subjects with vitiligo or resolved childhood asthma/atopy would be an exception to this rule. Subjects that require intermittent use of bronchodilators or local steroid injections would not be excluded from the study. Subjects with hypothyroidism stable on hormone replacement or Sjögren's syndrome will not be excluded from the study.",
        ),
        SeedCriterion(
            "exclusion",
            9,
            "Has evidence of symptomatic interstitial lung disease or an active, non-infectious pneumonitis.",
        ),
        SeedCriterion("exclusion", 10, "Has an active infection requiring systemic therapy."),
        SeedCriterion(
            "exclusion",
            11,
            "Has a history or current evidence of any condition, therapy, or laboratory abnormality that might confound the results of the trial, interfere with the subject's participation for the full duration of the trial, or is not in the best interest of the subject to participate, in the opinion of the treating investigator.",
        ),
        SeedCriterion(
            "exclusion",
            12,
            "Has known psychiatric or substance-abuse disorders that would interfere with cooperation with the requirements of the trial.",
        ),
        SeedCriterion(
            "exclusion",
            13,
            "Is pregnant or breastfeeding, or expecting to conceive within the projected duration of the trial, starting with the pre-screening or screening visit through 120 days after the last dose of trial treatment.",
        ),
        SeedCriterion(
            "exclusion",
            14,
            "Has received prior therapy with an anti-PD-1, anti-PD-L1, anti-PD-L2, anti-CD137, or anti-Cytotoxic T-lymphocyte-associated antigen-4 (CTLA-4) antibody (including ipilimumab or any other antibody or drug specifically targeting T-cell co-stimulation or checkpoint pathways).",
        ),
        SeedCriterion(
            "exclusion",
            15,
            "Has a known history of Human Immunodeficiency Virus (HIV) (HIV 1/2 antibodies).",
        ),
        SeedCriterion(
            "exclusion",
            16,
            "Has known active Hepatitis B (e.g. HBsAg reactive) or Hepatitis C (e.g. HCV RNA [qualitative] is detected).",
        ),
        SeedCriterion(
            "exclusion",
            17,
            "Has received a live vaccine within 30 days prior to the first dose of trial treatment.",
        ),
        SeedCriterion(
            "exclusion",
            18,
            "Has had major surgery or major blood transfusions (>3 packed cells) in the past 3 months.",
        ),
        SeedCriterion(
            "exclusion",
            19,
            "Receives IL-2, interferon or other non-study immunotherapy regimens; cytotoxic chemotherapy; immunosuppressive agents; other investigational therapies; or chronic use of systemic corticosteroids (used in the management of cancer or non-cancer-related illnesses)",
        ),
        SeedCriterion("exclusion", 20, "Under-age patients"),
        SeedCriterion("exclusion", 21, "Patients unable to express their consent"),
        SeedCriterion("exclusion", 22, "Vulnerable persons as defined by article L1121-5 - 8:"),
        SeedCriterion(
            "exclusion",
            23,
            "Pregnant women, women in labor or breast-feeding mothers, persons deprived of their freedom by judicial or administrative decision, persons hospitalized without their consent by virtue of articles L. 3212-1 and L. 3213-1 and who are not subject to the provisions of article L. 1121-8",
        ),
        SeedCriterion(
            "exclusion",
            24,
            "Persons admitted to a social or health facility for reasons other than research",
        ),
        SeedCriterion(
            "exclusion",
            25,
            "Adults subject to a legal protection order or unable to give their consent",
        ),
    ),
    notes=(
        "Registry page last updated 2025-02-19. In the 'Basic Information' block "
        "the values are unlabelled on this page (RECRUITING, PHASE2, 103 "
        "participants, INTERVENTIONAL, 2020-06-04, 2031-02-04); they are read in "
        "the same order as the labelled StORM-01 page (status, phase, enrolment, "
        "type, start date, completion date). Design: RANDOMIZED, PARALLEL, "
        "masking NONE. The allocation ratio is NOT stated on the page; 1:1 weights "
        "are assumed. The sponsor list gives no roles: 'Centre Antoine Lacassagne' "
        "is taken as lead sponsor because the detailed description says the "
        "atezolizumab 'will be provided by the Sponsor (Centre Antoine "
        "Lacassagne)' and it is listed last, as the lead is on the StORM-01 page; "
        "CHU de Caen (the PI's institution) and Roche Pharma AG are recorded as "
        "collaborators. The page's Conditions section is empty; the condition is "
        "taken from the summary (oligometastatic soft-tissue sarcoma, 'STS'). "
        "Primary endpoint is the primary objective as written (the page has no "
        "outcome-measures section). The detailed description also says "
        "'Atezolizumab 1200 mg in combination with SBRT, Q3W (6 cycles) for 4 "
        "months'; arm descriptions use the shorter arm/intervention text. The 17 "
        "locations have no per-site status on the page, so each site is UNKNOWN "
        "(the overall status is RECRUITING). Criteria are kept as the page lists "
        "them (13 inclusion, 25 exclusion bullets); exclusion 22 'Vulnerable "
        "persons as defined by article L1121-5 - 8:' is followed by three bullets "
        "(23-25) that read as its sub-items but are rendered on the page as "
        "separate top-level bullets, so they are kept separate. Minimum age 18 "
        "('18 Years', inclusion 4)."
    ),
    source_file="002_5d48d5080ca267dd.txt",
)

# ---------------------------------------------------------------------------
# 003 -- Gustave Roussy SBRT +/- ATRA phase I/II, NCT06439888
# ---------------------------------------------------------------------------
ATRA_SBRT = SeedTrial(
    code="ATRA-SBRT",
    acronym="",
    title="",
    registry_id="NCT06439888",
    other_ids=(),
    phase="PHASE1_2",
    design="run_in_randomised",
    blinding="open",
    target_enrolment=52,
    status="RECRUITING",
    start_date="2024-06-01",
    completion_date="2026-12-01",
    sponsor="Gustave Roussy, Cancer Campus, Grand Paris",
    collaborators=(),
    condition="Oligometastatic cancer",
    min_age=None,
    primary_endpoint=(
        "Part I: safety of pan-metastases directed SBRT combined with ATRA "
        "(single-arm safety run). Part II: lympho-protective efficacy of ATRA upon "
        "radiation-induced lymphopenia, i.e. the rate of patients with lymphopenia "
        "of grade 2 or higher at 6 weeks post-radiotherapy (expected 50% in the "
        "control arm; the study is powered to detect a decrease to 15% in the "
        "SBRT+ATRA arm)."
    ),
    arms=(
        SeedArm(
            code="SBRT_ATRA",
            name="SBRT+ATRA",
            description=(
                "SBRT to all lesions more than 1.5cm, on week days (from Monday to "
                "Friday), over a maximum of 2 weeks, with ATRA therapy: ATRA 150 "
                "mg/m^2/day for 3 days every 3 weeks for a maximum of 4 cycles "
                "(about 3 months), starting on the first day of radiation therapy. "
                "(Treatment of the Part I single-arm safety run-in and of the "
                "Part II experimental arm.)"
            ),
            allocation_weight=1,
        ),
        SeedArm(
            code="SBRT",
            name="Control arm",
            description=(
                "SBRT to all lesions more than 1.5cm, on week days (from Monday to "
                "Friday), over a maximum of 2 weeks, without ATRA (Part II patients "
                "randomized in the control arm)."
            ),
            allocation_weight=1,
        ),
    ),
    sites=(
        SeedSite(
            "Gustave Roussy, Cancer Campus, Grand Paris",
            "Villejuif",
            "France",
            "RECRUITING",
        ),
    ),
    criteria=(),
    notes=(
        "The page is a registry summary without an official title, acronym, "
        "organisation study id, minimum age, eligibility criteria or location "
        "list; those fields are left empty/None. The trial is described as 'a "
        "French bicentric, open label, phase I/II clinical study' with Part I a "
        "single-arm safety run and Part II randomized 1:1 (SBRT with or without "
        "ATRA). target_enrolment=52 is the Part II randomisation (26 per arm) "
        "stated on the page; the size of the Part I safety run-in is NOT stated, "
        "so the total enrolment is unknown and will be larger than 52. "
        "Dates on the page are month/year only ('June 2024', 'December 2026'); "
        "the first of the month is used. The sponsor is the page's 'Source' "
        "field. Only Gustave Roussy is recorded as a site: the second centre of "
        "the bicentric study is not named, and the city (Villejuif) is Gustave "
        "Roussy's location, not stated on the page; its status is the overall "
        "'Recruiting'. The primary endpoint is paraphrased from the summary "
        "(goal and sample-size paragraph); the page has no outcome-measures "
        "section. Arm names follow the page's wording ('SBRT+ATRA arm', 'control "
        "arm'); the Part I run-in uses the SBRT_ATRA arm."
    ),
    source_file="003_aa0cbde46e5d5f38.txt",
)

# ---------------------------------------------------------------------------
# 004 -- STOP-2, NCT06918951
# ---------------------------------------------------------------------------
STOP_2 = SeedTrial(
    code="STOP-2",
    acronym="STOP-2",
    title=(
        "Stereotactic Radiotherapy Versus Palliative Conventional Radiotherapy "
        "for Oligoprogressive Metastatic Cancers"
    ),
    registry_id="NCT06918951",
    other_ids=(),
    phase="PHASE3",
    design="randomised",
    blinding="double_blind",
    target_enrolment=194,
    status="RECRUITING",
    start_date=None,
    completion_date=None,
    sponsor="British Columbia Cancer Agency",
    collaborators=(),
    condition="Oligoprogressive metastatic solid cancers",
    min_age=19,
    primary_endpoint=(
        "To assess the impact of SABR, compared to palliative conventional "
        "radiotherapy, on Progression-free survival on next line systemic therapy "
        "(PFS-NEST), oncologic outcomes, and Quality of Life (QOL) in participants "
        "with 1-5 oligoprogressing lesions.\n"
        "To assess the feasibility of the clinical trial in terms of accrual and "
        "success of double-blinding."
    ),
    arms=(
        SeedArm(
            code="CONTROL",
            name="Control Arm",
            description=(
                "In the control arm, radiotherapy will consist of 8 Gy in 1 "
                "fraction to all sites of oligoprogression"
            ),
            allocation_weight=1,
        ),
        SeedArm(
            code="SABR",
            name="Experimental Arm",
            description=(
                "the experimental arm will consist of SABR treatment to all sites "
                "of oligoprogression"
            ),
            allocation_weight=1,
        ),
    ),
    sites=(
        SeedSite(
            "British Columbia Cancer Agency",
            "Vancouver",
            "Canada",
            "RECRUITING",
        ),
    ),
    criteria=(
        SeedCriterion("inclusion", 1, "Age 19 or older"),
        SeedCriterion("inclusion", 2, "Able to provide informed consent"),
        SeedCriterion(
            "inclusion",
            3,
            "Histologically confirmed solid malignancy (excluding lymphoma or myeloma) with metastatic disease detected on imaging",
        ),
        SeedCriterion(
            "inclusion",
            4,
            "Biopsy of metastasis at some time prior to enrollment is preferred, but not required",
        ),
        SeedCriterion("inclusion", 5, "ECOG performance status 0-2"),
        SeedCriterion("inclusion", 6, "Life expectancy ≥ 6 months"),
        SeedCriterion(
            "inclusion",
            7,
            "Progression meeting RECIST criteria in up to 5 individual lesions. Progression may be defined as:\n1. Progression of an individual metastasis according to RECIST 1.1 criteria (≥ 20% enlargement of the tumour vs. baseline or nadir, taking as reference the smallest diameter seen prior to starting or during systemic therapy, and associated with a 5 mm minimum increase in size) OR\n2. Unambiguous development of a new metastatic lesion at least 5 mm in size OR\n3. Progressive enlargement of a known metastasis on 2 consecutive imaging studies 2-3 months apart with a minimum 5 mm increase in size from baseline.\n4. A progressing primary tumor is eligible as per the criteria above",
        ),
        SeedCriterion(
            "inclusion",
            8,
            "If the participant is on systemic therapy at the time of oligoprogression:\nThe most recent systemic therapy agent must have been delivered for a total of at least 3 months, with an initial partial response (PR), complete response (CR) or stable disease (SD) prior to the development of oligoprogressive lesions",
        ),
        SeedCriterion(
            "inclusion",
            9,
            'If the participant is not on systemic therapy at the time of oligoprogression:\n(i.e., "oligorecurrence"(1), however, included as "oligoprogression" for the purpose of this study protocol):',
        ),
        SeedCriterion(
            "inclusion",
            10,
            "There must be PR, CR or SD persisting for at least 3 months prior to the development of oligoprogressive lesions",
        ),
        SeedCriterion(
            "inclusion",
            11,
            "Participants who are not on systemic therapy at the time of oligoprogression must have other site(s) of disease (metastases or primary tumor) that are stable or resolved and have not received definitive treatment (inclusive of surgery, radical doses of radiotherapy including SABR, or ablation) and are not going to receive SABR.",
        ),
        SeedCriterion("inclusion", 12, "All sites of oligoprogression can be safely treated"),
        SeedCriterion(
            "inclusion",
            13,
            "Restaging completed within 12 weeks prior to randomization (see section 5.1)",
        ),
        SeedCriterion(
            "inclusion",
            14,
            "Negative urine pregnancy test for People of Child-Bearing Potential (POCBP) within 4 weeks of radiotherapy start date.",
        ),
        SeedCriterion(
            "exclusion",
            1,
            "Serious medical comorbidities precluding radiotherapy. These include ataxia-telangiectasia or scleroderma, Crohn's disease in participants where the gastrointestinal (GI) tract will receive radiotherapy, or ulcerative colitis where the bowel will receive radiotherapy.\n1. For participants with oligoprogressive lesions in the lung or thorax, this includes interstitial lung disease.",
        ),
        SeedCriterion(
            "exclusion",
            2,
            "Substantial overlap with a previously treated radiation volume. Prior radiotherapy in general is allowed, provided that the composite plan meets dose constraints herein. For participants treated with radiation previously, biological effective dose calculations should be used to equate previous doses to the tolerance doses listed in Appendix 1. A tissue recovery factor may be used in these calculations and if so, must be clearly documented, along with elapsed time from previous radiotherapy, and approved by the local principal investigator.",
        ),
        SeedCriterion(
            "exclusion",
            3,
            "Current malignant pleural effusion, malignant ascites, or leptomeningeal disease",
        ),
        SeedCriterion("exclusion", 4, "Inability to treat all sites of oligoprogressive disease"),
        SeedCriterion(
            "exclusion",
            5,
            "Liver metastases requiring placement of fiducial markers for SABR, as this would compromise successful blinding. Liver metastases are eligible if: 1) they are treated at an institution that offers liver SABR without fiducial markers or 2) pre-existing markers such as surgical clips or calcifications would serve as fiducial markers",
        ),
        SeedCriterion(
            "exclusion",
            6,
            "Brain metastasis > 3.5 cm in size or a total volume of brain metastases greater than 30 cc.",
        ),
        SeedCriterion(
            "exclusion",
            7,
            "Clinical or radiologic evidence of spinal cord compression. Participants can be eligible if surgical resection has been performed.",
        ),
        SeedCriterion(
            "exclusion",
            8,
            "Participants with spine instability as judged by a Spinal Instability Neoplastic Score (SINS) of >12.",
        ),
        SeedCriterion("exclusion", 9, "Dominant brain metastasis requiring surgical decompression"),
        SeedCriterion(
            "exclusion",
            10,
            "For participants with liver metastases; moderate/severe liver dysfunction (Child Pugh B or C)",
        ),
        SeedCriterion(
            "exclusion",
            11,
            'Liver metastases located in the "Biliary no fly zone" defined for this trial as common biliary track, cystic duct and distal branches (1 cm) + 5 mm',
        ),
        SeedCriterion(
            "exclusion",
            12,
            "Surgical resection of all oligoprogression metastases (i.e. no lesion available to be treated with SABR)",
        ),
        SeedCriterion("exclusion", 13, "Pregnant or lactating individuals"),
    ),
    notes=(
        "PHASE DISCREPANCY: the page header says 'Phase N/A' but the overview "
        "says 'STOP-2 is a phase III multi-institutional double-blind randomized "
        "trial'; PHASE3 is used. Participants, enrolling oncologists and the "
        "statistician are blinded; randomisation 1:1, 194 participants. The page "
        "gives no start or completion date (an unlabelled date '31 January 2026' "
        "appears next to the sponsor name, probably a last-update date, and is not "
        "used). No organisation study id and no collaborators are listed. The "
        "page shows a single title (no separate official/brief title). The page "
        "LISTS NO LOCATIONS (the overview says 'multi-institutional' but names no "
        "institution): the only site recorded is the sponsor, British Columbia Cancer Agency; "
        "'Vancouver' is the sponsor's seat and is NOT stated on the page; its "
        "status is the overall 'Recruiting'. Primary endpoint = the two 'Primary "
        "Objectives' verbatim (one per line). Criteria follow the page's "
        "numbering: inclusion 7's sub-points 1-4, inclusion 8's and 9's "
        "continuation paragraphs and exclusion 1's sub-point are appended to "
        "their parent on new lines. Inclusion 10 and 11 are numbered as top-level "
        "items on the page although they read as the conditions of inclusion 9 "
        "(participants not on systemic therapy); they are kept as separate "
        "criteria to match the page numbering. Minimum age 19 ('19 years and "
        "older', inclusion 1). The page's 'Powered by AI' overview is the only "
        "source for design details."
    ),
    source_file="004_935f8caceb9e97e7.txt",
)


SEED_TRIALS: tuple[SeedTrial, ...] = (
    STORM_01,
    STORM_01_R,
    STEREOSARC,
    ATRA_SBRT,
    STOP_2,
)

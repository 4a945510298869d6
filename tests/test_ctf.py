"""Tests for the DfE Common Transfer File reader, on the shared CTF fixtures read in place."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines.problems import ExtractError, Problem
from pipelines.readers.ctf import CTFRead, is_ctf, read_ctf

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "ctf"
ALL_FIXTURES = ["y12.xml", "y7_2_students.xml", "y7_partial.xml", "y7_spaced_numbers.xml"]


def read(name: str) -> CTFRead:
    return read_ctf(FIXTURES / name)


def contact(result: CTFRead, contact_id: str) -> dict[str, object]:
    frame = result.tables["contacts"]
    rows = frame[frame["contact_id"] == contact_id]
    assert len(rows) == 1, contact_id
    return rows.iloc[0].to_dict()


def student(result: CTFRead, upn: str) -> dict[str, object]:
    frame = result.tables["students"]
    rows = frame[frame["student_id"] == upn]
    assert len(rows) == 1, upn
    return rows.iloc[0].to_dict()


def the_error(path: Path) -> Problem:
    with pytest.raises(ExtractError) as caught:
        read_ctf(path)
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert problem.severity == "error"
    assert problem.file == path.name
    assert problem.fix
    return problem


def write_ctf(tmp_path: Path, pupils: str, header: str = "", name: str = "t.xml") -> Path:
    path = tmp_path / name
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<CTfile>\n<Header>\n'
        f"<CTFversion>25.0</CTFversion>\n{header}</Header>\n"
        f"<CTFpupilData>\n{pupils}</CTFpupilData>\n</CTfile>\n",
        encoding="utf-8",
    )
    return path


def test_fixtures_are_there() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.xml")) == ALL_FIXTURES


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_fixture_is_a_ctf_with_object_columns_of_str_or_none(name: str) -> None:
    assert is_ctf(FIXTURES / name)
    result = read(name)
    assert set(result.tables) == {"students", "contacts"}
    for frame in result.tables.values():
        for column in frame.columns:
            assert frame[column].dtype == object, (name, column)
            assert all(v is None or isinstance(v, str) for v in frame[column]), (name, column)
        for column in set(frame.columns) - {"student_id", "upn", "contact_id"}:
            assert frame[column].notna().any(), (name, column)  # all-blank columns left out


def test_is_ctf_refuses_other_files(tmp_path: Path) -> None:
    csv = tmp_path / "students.csv"
    csv.write_text("student_id,forename\nS1,Ann\n", encoding="utf-8")
    other_xml = tmp_path / "other.xml"
    other_xml.write_text("<?xml version='1.0'?><Students><Pupil/></Students>", encoding="utf-8")
    assert not is_ctf(csv)
    assert not is_ctf(other_xml)
    assert not is_ctf(FIXTURES / "LICENSE.GPL3")
    assert not is_ctf(tmp_path / "missing.xml")


def test_two_students_header_and_pupils() -> None:
    result = read("y7_2_students.xml")
    assert result.partial is False
    assert result.source_school == "Stickland's CE VA Primary (838/3321)"
    students = result.tables["students"]
    assert students["student_id"].tolist() == ["G335311012004", "U865346313703"]
    assert "email" not in students.columns  # no pupil e-mail in this file: not blanked
    assert student(result, "G335311012004") == {
        "student_id": "G335311012004",
        "upn": "G335311012004",
        "forename": "Lionel",
        "surname": "Richie",
        "preferred_forename": "Lionel",
        "date_of_birth": "2008-11-13",
        "year_group": "6",
        "status": "C",
        "sex": "M",
        "mobile": None,
    }
    sandy = student(result, "U865346313703")
    assert (sandy["forename"], sandy["surname"], sandy["date_of_birth"]) == (
        "Sandy",
        "Newman",
        "2009-08-18",
    )
    assert sandy["sex"] == "F"
    assert sandy["mobile"] == "07503789696"  # the pupil's own M phone, not a contact's


def test_two_students_contacts_ordered_by_order() -> None:
    contacts = read("y7_2_students.xml").tables["contacts"]
    # The file lists Richie's contacts as Order 3, 4, 2, 1 and Newman's as 3, 2, 1.
    assert contacts["contact_id"].tolist() == [
        "G335311012004-1",
        "G335311012004-2",
        "G335311012004-3",
        "G335311012004-4",
        "U865346313703-1",
        "U865346313703-2",
        "U865346313703-3",
    ]
    assert contacts["priority"].tolist() == ["1", "2", "3", "4", "1", "2", "3"]
    assert contacts["forename"].tolist() == [
        "Jeanie",
        "Mac",
        "Curvel",
        "Marjery",
        "Clare",
        "Chris",
        "Kathleen",
    ]
    assert contacts["relationship"].tolist() == ["PAM", "PAF", "OTH", "OTH", "PAM", "PAF", "OTH"]
    assert contacts["parental_responsibility"].tolist() == ["Y", "Y", "N", "N", "Y", "Y", "N"]


def test_two_students_contact_details_phones_and_addresses() -> None:
    result = read("y7_2_students.xml")
    jeanie = contact(result, "G335311012004-1")
    assert (jeanie["title"], jeanie["surname"], jeanie["email"]) == (
        "Mrs",
        "Richie",
        "jean19Richie@yahoo.com",
    )
    assert jeanie["mobile"] == "07702417987"
    assert jeanie["home_phone"] == "01922683670"  # first of two H phones
    # AddressAsPupil: Lionel's BS7666 address, PAON padding trimmed, PostTown as town.
    assert (
        jeanie["address_line1"],
        jeanie["address_line2"],
        jeanie["town"],
        jeanie["postcode"],
    ) == ("God's Illa", "Hake's Brill, Melbury Osmond", "Dorchester", "DT2 0NS")
    marjery = contact(result, "G335311012004-4")
    assert (marjery["mobile"], marjery["home_phone"]) == ("07909182885", "01922739628")
    clare = contact(result, "U865346313703-1")
    assert (clare["address_line1"], clare["address_line2"]) == (
        "Run DNC",
        "Yeovil Road, Melbury Osmond",
    )
    kathleen = contact(result, "U865346313703-3")  # her own address, with SAON and County
    assert (kathleen["title"], kathleen["surname"], kathleen["email"]) == (
        "Mrs",
        "Moffat",
        "kMoffat78@yahoo.com",
    )
    assert (
        kathleen["address_line1"],
        kathleen["address_line2"],
        kathleen["town"],
        kathleen["postcode"],
    ) == (
        "Lizzo Farmhouse",
        "Lizzo Farm, Access To Lizzo Farm, Melbury Sampford",
        "Dorchester",
        "DT2 0LR",
    )
    assert (kathleen["mobile"], kathleen["home_phone"]) == ("07582799867", "01935836439")


def test_second_mobile_is_a_warning_without_the_numbers() -> None:
    result = read("y7_2_students.xml")
    mac = contact(result, "G335311012004-2")
    assert mac["mobile"] == "07517586993"  # the first M; 07979561943 is the second
    assert mac["home_phone"] == "0193583981"
    assert len(result.warnings) == 1
    problem = result.warnings[0]
    assert problem.severity == "warning"
    assert problem.file == "y7_2_students.xml"
    assert problem.value == "G335311012004"
    assert problem.column == "mobile"
    assert problem.line == 133  # Mac Richie's <Contact>
    assert "MIS" in problem.fix
    text = problem.as_text()
    assert "Mac Richie" in text
    assert "07517586993" not in text and "07979561943" not in text


def test_partial_ctf_fills_only_what_it_holds() -> None:
    result = read("y7_partial.xml")
    assert result.partial is True
    assert result.source_school == "Lil Old Prim. School (933/3281)"
    students = result.tables["students"]
    assert students.to_dict("records") == [
        {
            "student_id": "J933207636549",
            "upn": "J933207636549",
            "forename": "Mick",
            "surname": "Jagger",
            "preferred_forename": "Mick",
            "date_of_birth": "2009-06-07",
            "year_group": "6",
            "status": "C",
            "sex": "M",
        }
    ]
    assert "mobile" not in students.columns and "email" not in students.columns
    contacts = result.tables["contacts"]
    assert contacts.empty
    assert list(contacts.columns) == ["student_id", "contact_id"]
    assert result.warnings == []


def test_spaced_numbers_are_normalised() -> None:
    result = read("y7_spaced_numbers.xml")
    assert result.source_school == "St Martins Primary (706/2010)"
    jarvis = student(result, "C706200819999")
    assert (jarvis["forename"], jarvis["surname"], jarvis["date_of_birth"]) == (
        "Jarvis",
        "Cocker",
        "2009-01-12",
    )
    assert jarvis["mobile"] == "07344756736"  # "07344 756736"
    assert jarvis["email"] == "sCocker2@hssd.gov.gg"
    lucy = contact(result, "C706200819999-1")
    assert (lucy["title"], lucy["relationship"], lucy["parental_responsibility"]) == (
        "Dr",
        "PAM",
        "Y",
    )
    assert lucy["mobile"] == "07874376894"  # "07874 376894"
    assert lucy["home_phone"] == "234981"  # the W phone 776241 is not a home phone
    assert (lucy["address_line1"], lucy["address_line2"], lucy["town"], lucy["postcode"]) == (
        "The Supermarket",
        "There",
        "London",
        "OV3R 5EA",
    )
    flappy = contact(result, "C706200819999-2")
    assert (flappy["relationship"], flappy["parental_responsibility"]) == ("REL", "N")
    assert flappy["mobile"] == "07689415547"  # "07689 415 547"
    assert flappy["address_line1"] is None  # no address at all
    mick = contact(result, "C706200819999-3")
    assert (mick["mobile"], mick["home_phone"]) == ("07546157201", "238700")
    [problem] = result.warnings
    assert (problem.value, problem.column, problem.line) == ("C706200819999", "mobile", 99)
    assert "07234515547" not in problem.as_text() and "07689" not in problem.as_text()


def test_y12_contacts_without_relationship_or_home_phone() -> None:
    result = read("y12.xml")
    assert result.partial is False
    assert result.source_school == "Huish Episcopi Academy (933/4259)"
    tom = student(result, "Z801209809069")
    assert (
        tom["forename"],
        tom["surname"],
        tom["date_of_birth"],
        tom["year_group"],
        tom["status"],
        tom["sex"],
    ) == ("Tom", "Waits", "2004-05-10", "11", "C", "F")
    contacts = result.tables["contacts"]
    assert contacts["surname"].tolist() == ["Waits", "Waits", "Samberg", "Namatati"]
    assert contacts["relationship"].tolist() == ["PAF", "PAM", None, None]
    assert contacts["mobile"].tolist() == [
        "07788178715",
        "07742491894",
        "07718751986",
        "0774921789",
    ]
    assert "home_phone" not in contacts.columns  # no H phone anywhere in this file
    assert "address_line2" not in contacts.columns
    joseph = contact(result, "Z801209809069-1")
    assert (joseph["address_line1"], joseph["town"], joseph["postcode"]) == (
        "11 Lea Close",
        "Yeovil",
        "BA21 4PJ",
    )
    assert contact(result, "Z801209809069-3")["postcode"] is None
    assert result.warnings == []


PUPIL = """<Pupil>
<UPN>A123456789012</UPN><Surname>Test</Surname><Forename>Ann</Forename>
<DOB>2012-03-04</DOB>{sex}
<BasicDetails><NCyearActual>7</NCyearActual><EnrolStatus>C</EnrolStatus></BasicDetails>
<Address><AddressLines><AddressLine1>Flat 2</AddressLine1>
<AddressLine2>1 High Street</AddressLine2></AddressLines><PostCode>AB1 2CD</PostCode></Address>
<Phones><Phone><TelephoneType>M</TelephoneType><TelNo>07700 900 001</TelNo></Phone>
<Phone><TelephoneType>M</TelephoneType><TelNo>07700900002</TelNo></Phone></Phones>
<Contacts>
<Contact><Order>2</Order><Surname>Two</Surname><Responsibility>0</Responsibility>
<Address><AddressAsPupil>1</AddressAsPupil></Address></Contact>
<Contact><Order>1</Order><Surname>One</Surname><Responsibility>1</Responsibility></Contact>
</Contacts>
</Pupil>
"""


def test_sex_lines_address_telno_and_numeric_booleans(tmp_path: Path) -> None:
    path = write_ctf(
        tmp_path, PUPIL.format(sex="<Sex>F</Sex>"), "<DocumentQualifier>partial</DocumentQualifier>"
    )
    result = read_ctf(path, file_label="upload.xml")
    assert result.partial is True
    assert result.source_school == ""
    ann = student(result, "A123456789012")
    assert (ann["sex"], ann["year_group"], ann["mobile"]) == ("F", "7", "07700900001")
    contacts = result.tables["contacts"]
    assert contacts["surname"].tolist() == ["One", "Two"]
    assert contacts["parental_responsibility"].tolist() == ["Y", "N"]
    two = contact(result, "A123456789012-2")
    assert (two["address_line1"], two["address_line2"], two["postcode"]) == (
        "Flat 2",
        "1 High Street",
        "AB1 2CD",
    )
    [problem] = result.warnings  # the pupil's own second mobile
    assert (problem.file, problem.extract, problem.column, problem.value) == (
        "upload.xml",
        "students",
        "mobile",
        "A123456789012",
    )


def test_gender_and_sex_both_become_sex(tmp_path: Path) -> None:
    for tag in ("Gender", "Sex"):
        path = write_ctf(tmp_path, PUPIL.format(sex=f"<{tag}>M</{tag}>"), name=f"{tag}.xml")
        assert student(read_ctf(path), "A123456789012")["sex"] == "M"


def test_malformed_xml_reports_line_and_column(tmp_path: Path) -> None:
    text = (FIXTURES / "y7_partial.xml").read_text(encoding="utf-8")
    path = tmp_path / "broken.xml"
    path.write_text(
        text.replace("<Surname>Jagger</Surname>", "<Surname>Jagger</Surnme>"), encoding="utf-8"
    )
    expected_line = text.splitlines().index("<Surname>Jagger</Surname>") + 1
    assert expected_line == 25
    problem = the_error(path)
    assert problem.line == expected_line
    assert "not well-formed XML" in problem.problem
    assert "line 25, column 18" in problem.problem  # 1-based: the name in "</Surnme>"
    assert "export the CTF again" in problem.fix


def test_not_a_ctf(tmp_path: Path) -> None:
    path = tmp_path / "students.xml"
    path.write_text(
        "<?xml version='1.0'?>\n<Students><Pupil><UPN>X</UPN></Pupil></Students>\n",
        encoding="utf-8",
    )
    problem = the_error(path)
    assert "not a DfE Common Transfer File" in problem.problem
    assert "<Students>" in problem.problem
    csv = tmp_path / "students.csv"
    csv.write_text("student_id,forename\nS1,Ann\n", encoding="utf-8")
    problem = the_error(csv)
    assert "not XML" in problem.problem and problem.line == 1


def test_ctf_with_no_pupils(tmp_path: Path) -> None:
    problem = the_error(write_ctf(tmp_path, ""))
    assert "holds no pupils" in problem.problem
    assert "pupils you are transferring selected" in problem.fix


def test_pupil_without_upn(tmp_path: Path) -> None:
    second = PUPIL.format(sex="").replace("<UPN>A123456789012</UPN>", "")
    problem = the_error(write_ctf(tmp_path, PUPIL.format(sex="") + second))
    assert "pupil 2" in problem.problem and "Ann Test" in problem.problem
    assert problem.column == "UPN"
    assert problem.line == 7 + PUPIL.count("\n")  # second <Pupil> start tag


def test_duplicate_upn(tmp_path: Path) -> None:
    problem = the_error(write_ctf(tmp_path, PUPIL.format(sex="") * 2))
    assert problem.value == "A123456789012" and "twice" in problem.problem


def test_missing_file_is_an_extract_error(tmp_path: Path) -> None:
    with pytest.raises(ExtractError, match="cannot open"):
        read_ctf(tmp_path / "gone.xml")


def test_tables_are_dataframes() -> None:
    assert all(isinstance(t, pd.DataFrame) for t in read("y12.xml").tables.values())

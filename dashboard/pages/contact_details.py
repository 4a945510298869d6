"""Contact details: which current students cannot be reached, and why."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard import cached
from dashboard.common import (
    DATA_LOADS_PAGE,
    capped,
    current_generation,
    data_dir,
    download,
    get_warehouse,
    no_data_state,
    page_link_or_text,
    require_page,
    run_or_stop,
)
from reports import contacts

GROUPINGS = {"Form": "form", "Year group": "year_group"}


def metrics(summary: dict[str, int]) -> None:
    cols = st.columns(5)
    cols[0].metric("Current students", f"{summary['students']:,}")
    cols[1].metric("Without a priority-1 contact", f"{summary['without_priority1']:,}")
    cols[2].metric(
        "Without a valid mobile",
        f"{summary['without_valid_mobile']:,}",
        help="No contact has a mobile number that is a valid UK or international "
        "mobile, so no text message can reach the family.",
    )
    cols[3].metric(
        "Without an e-mail",
        f"{summary['without_email']:,}",
        help="No contact has an e-mail address.",
    )
    cols[4].metric(
        "Contacts with invalid numbers",
        f"{summary['contacts_with_invalid_numbers']:,}",
        help=f"{summary['invalid_numbers']:,} number(s) in all; listed below.",
    )


def chart(folder: str, generation: int, filters: tuple[tuple[str, ...], ...]) -> None:
    """Bars: the students with each problem, per form or year group (``filters``: the
    forms, year groups and problem kinds chosen)."""
    st.subheader("Problems by group")
    label = st.radio("Group by", list(GROUPINGS), horizontal=True, key="chart_group")
    by = GROUPINGS[label or "Form"]
    data = run_or_stop(
        "count the problems by group",
        cached.contact_problems_by,
        folder,
        generation,
        *filters,
        by,
    )
    if data.empty or not data["students"].any():
        st.success("No problems in the students shown.")
        return
    order = list(dict.fromkeys(data[by]))
    bars = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X(f"{by}:N", sort=order, title=label),
            xOffset=alt.XOffset("problem:N", sort=list(contacts.PROBLEM_KINDS)),
            y=alt.Y("students:Q", title="Students"),
            color=alt.Color("problem:N", sort=list(contacts.PROBLEM_KINDS), title="Problem"),
            tooltip=[
                alt.Tooltip(f"{by}:N", title=label),
                alt.Tooltip("problem:N", title="Problem"),
                alt.Tooltip("students:Q", title="Students"),
            ],
        )
    )
    st.altair_chart(bars, width="stretch")


def main() -> None:
    """The page."""
    require_page("contact_details")
    st.title("Contact details")
    warehouse = get_warehouse()
    generation = current_generation(warehouse)
    if generation is None:
        no_data_state()
        return
    folder = data_dir()
    details = run_or_stop("read the contact details", cached.contact_details, folder, generation)
    if details.empty:
        st.info(
            "The loaded data has no current students (status starting with C). Load a "
            "students extract with current pupils, and their contacts, on Data loads."
        )
        page_link_or_text(DATA_LOADS_PAGE, "Data loads", icon=":material/upload_file:")
        return
    summary = run_or_stop("count the contact problems", cached.contact_summary, folder, generation)
    invalid = run_or_stop("list the invalid numbers", cached.invalid_numbers, folder, generation)
    st.caption(f"Current students and their contacts, from generation {generation}.")
    metrics(summary)

    st.subheader("Students")
    form_col, year_col, kind_col = st.columns(3)
    options = run_or_stop("list the forms", cached.contact_options, folder, generation)
    forms = form_col.multiselect("Form", options["form"], key="filter_forms")
    years = year_col.multiselect("Year group", options["year_group"], key="filter_years")
    kinds = kind_col.multiselect(
        "Problems",
        list(contacts.PROBLEM_KINDS),
        key="filter_kinds",
        help="Show students with any of these problems.",
    )
    shown = contacts.filter_details(details, forms=forms, year_groups=years, kinds=kinds)
    table = shown[contacts.DETAIL_COLUMNS]
    st.caption(f"{len(shown):,} of {len(details):,} students shown.")
    if shown.empty:
        st.info("No students match these filters; clear some of them to see more.")
    else:
        st.dataframe(
            capped(table, "students"),
            hide_index=True,
            width="stretch",
            column_config={
                "student_id": "Student ID",
                "name": "Name",
                "year_group": "Year",
                "form": "Form",
                "has_priority1": st.column_config.CheckboxColumn("Priority-1 contact"),
                "priority1_contact": "Priority-1 contact name",
                "priority1_mobile": "Priority-1 mobile",
                "has_valid_mobile": st.column_config.CheckboxColumn("Valid mobile"),
                "has_email": st.column_config.CheckboxColumn("E-mail"),
                "invalid_numbers": "Invalid numbers",
                "problems": "Problems",
            },
        )
    download(
        table,
        "contact_details.csv",
        "download_details",
        label="Download these students (CSV)",
        disabled=shown.empty,
    )

    if not shown.empty:
        chart(folder, generation, (tuple(forms), tuple(years), tuple(kinds)))

    st.subheader("Invalid phone numbers")
    in_scope = invalid
    if forms:
        in_scope = in_scope[in_scope["form"].isin(forms)]
    if years:
        in_scope = in_scope[in_scope["year_group"].isin(years)]
    if in_scope.empty:
        st.success("No invalid phone numbers among these students' contacts.")
    else:
        st.caption(
            "Numbers given in the MIS that are not valid phone numbers. Correct them "
            "in the MIS and load the contacts extract again."
        )
        st.dataframe(capped(in_scope, "numbers"), hide_index=True, width="stretch")
        download(
            in_scope,
            "invalid_numbers.csv",
            "download_invalid",
            label="Download invalid numbers (CSV)",
        )


main()

"""Read extracts from a MIS reporting database with SQL, through SQLAlchemy.

Configured per extract: the secret ``mis_database_url`` names the database and the
setting ``sql_sources`` maps extract names to queries that return canonical columns.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from pipelines.problems import ExtractError, error
from pipelines.readers import Source, positional_frame
from pipelines.specs import EXTRACTS


def read_sql_sources(
    url: str, queries: Mapping[str, str], only: list[str] | None = None
) -> list[Source]:
    """Run each configured query and return one source per extract."""
    if not url:
        raise ExtractError(
            error(
                "no MIS database is configured",
                "set the secret mis_database_url (environment "
                "SCHOOLCOMMS_MIS_DATABASE_URL or .streamlit/secrets.toml) to an SQLAlchemy URL",
                column="mis_database_url",
            )
        )
    if not queries:
        raise ExtractError(
            error(
                "no SQL queries are configured",
                "add a [sql_sources] table to settings.toml "
                'with one query per extract, e.g. students = "SELECT … AS student_id, …"',
                column="sql_sources",
            )
        )
    wanted = only or list(queries)
    unknown = [name for name in wanted if name not in EXTRACTS or name not in queries]
    if unknown:
        raise ExtractError(
            error(
                f"no SQL source for {', '.join(unknown)}",
                f"configured extracts are: {', '.join(queries)}; extract names are "
                f"{', '.join(EXTRACTS)}",
                column="sql_sources",
            )
        )
    engine = sa.create_engine(url)
    sources = []
    try:
        with engine.connect() as conn:
            for name in wanted:
                label = f"sql:{name}"
                try:
                    result = conn.execute(sa.text(queries[name]))
                    header = list(result.keys())
                    rows = [list(r) for r in result]
                except SQLAlchemyError as exc:
                    raise ExtractError(
                        error(
                            f"the query failed: {str(exc.orig if hasattr(exc, 'orig') else exc)[:300]}",
                            f"correct the query for {name} in [sql_sources] and try it in your "
                            "database's own SQL tool first",
                            file=label,
                        )
                    ) from exc
                frame = positional_frame(rows, len(header), list(range(1, len(rows) + 1)))
                sources.append(Source(EXTRACTS[name], label, "sql", None, header, frame=frame))
    except SQLAlchemyError as exc:
        raise ExtractError(
            error(
                f"cannot connect to the MIS database ({exc.__class__.__name__})",
                "check mis_database_url (host, database name, user and password) and that the "
                "database accepts connections from this machine",
                column="mis_database_url",
            ),
        ) from exc
    finally:
        engine.dispose()
    return sources

"""validation's migrations that do more than Django's autodetector: the profiles' column compression."""
from django.db import connection


def test_profiles_are_compressed_with_lz4_on_postgresql(db):
    # Every verdict writes two profiles of hundreds of kB; pglz cost 20 to 45 ms a write (migration 0011).
    with connection.cursor() as cursor:
        cursor.execute("""SELECT attrelid::regclass::text, attcompression FROM pg_attribute
                           WHERE attname = 'profile' AND attrelid::regclass::text IN
                                 ('validation_baseline', 'validation_validationrun', 'validation_dailyprofile')""")
        found = dict(cursor.fetchall())
    assert found == {"validation_baseline": "l", "validation_validationrun": "l", "validation_dailyprofile": "l"}

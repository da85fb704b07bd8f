"""The daily limit of a doctor's appointments, enforced by PostgreSQL whatever writes the row.

A clinic day is a calendar day in the clinic's zone, which every connection declares in the custom setting
`hospital.clinic_time_zone` (settings.py puts it in the connection options, from CLINIC_TIME_ZONE). A session
that does not declare it cannot write an appointment that counts against the limit: the trigger fails.

Before a row starts to count (inserted, moved to another start or doctor, or no longer overbooked), the trigger
locks the doctor's row (FOR NO KEY UPDATE: bookings for one doctor queue behind each other, while other
tables' foreign keys to the doctor are not blocked) and counts that day's non-cancelled, non-overbooked
appointments. Under READ COMMITTED each statement of the function sees what committed before it started, so
the count after the lock includes every booking that won the lock before. One more than
max_appointments_per_day raises check_violation naming the constraint `appointment_daily_limit`.
"""

from django.db import migrations

CREATE = r"""
CREATE FUNCTION hospital_appointment_daily_limit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    zone text := current_setting('hospital.clinic_time_zone');
    local_day timestamp;
    day_start timestamptz;
    day_end timestamptz;
    capacity integer;
    taken integer;
BEGIN
    IF NEW.status = 'cancelled' OR NEW.overbooked THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.start = OLD.start AND NEW.doctor_id = OLD.doctor_id
            AND OLD.status <> 'cancelled' AND NOT OLD.overbooked THEN
        RETURN NEW;  -- already counted on this day
    END IF;
    SELECT max_appointments_per_day INTO capacity FROM hospital_doctor WHERE id = NEW.doctor_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN NEW;  -- the foreign key reports the missing doctor
    END IF;
    local_day := date_trunc('day', NEW.start AT TIME ZONE zone);
    day_start := local_day AT TIME ZONE zone;
    day_end := (local_day + interval '1 day') AT TIME ZONE zone;
    SELECT count(*) INTO taken FROM hospital_appointment
        WHERE doctor_id = NEW.doctor_id AND start >= day_start AND start < day_end
          AND status <> 'cancelled' AND NOT overbooked AND id IS DISTINCT FROM NEW.id;
    IF taken >= capacity THEN
        RAISE EXCEPTION 'doctor % is fully booked on %', NEW.doctor_id, local_day::date
            USING ERRCODE = 'check_violation', CONSTRAINT = 'appointment_daily_limit';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER appointment_daily_limit BEFORE INSERT OR UPDATE ON hospital_appointment
    FOR EACH ROW EXECUTE FUNCTION hospital_appointment_daily_limit();
"""

DROP = """
DROP TRIGGER IF EXISTS appointment_daily_limit ON hospital_appointment;
DROP FUNCTION IF EXISTS hospital_appointment_daily_limit();
"""


class Migration(migrations.Migration):
    dependencies = [("hospital", "0008_appointments")]

    operations = [migrations.RunSQL(CREATE, DROP)]

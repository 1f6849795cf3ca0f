-- Seed data for the NovaCron schema. `:vms` is replaced by the VM count before running;
-- the caller runs `SELECT setseed(...)` first so random() is deterministic.

INSERT INTO zones (name, region) VALUES
    ('us-east-1', 'us-east'), ('us-west-2', 'us-west'), ('eu-west-1', 'eu-west'),
    ('eu-central-1', 'eu-central'), ('ap-southeast-1', 'ap-southeast'),
    ('ap-northeast-1', 'ap-northeast');

-- 8 hosts per zone; host ids for zone z are (z-1)*8+1 .. z*8
INSERT INTO hosts (name, zone, cpu_cores, memory_mb, state)
SELECT format('host-%s-%s', z.name, h), z.name, 64, 524288,
       CASE WHEN h = 8 THEN 'maintenance' ELSE 'online' END
FROM zones z CROSS JOIN generate_series(1, 8) AS h
ORDER BY z.id, h;

INSERT INTO vms (id, name, description, zone, host_id, cpu, memory_mb, disk_gb, state, tags,
                 created_at, updated_at)
SELECT i,
       format('%s-%s', (ARRAY['web', 'api', 'db', 'cache', 'worker', 'batch', 'gateway',
                              'search'])[1 + i % 8], lpad(i::text, 5, '0')),
       format('%s %s for the %s service in %s',
              (ARRAY['nginx', 'postgres', 'redis', 'kafka', 'python', 'golang', 'java',
                     'envoy'])[1 + (i / 8) % 8],
              (ARRAY['frontend', 'backend', 'replica', 'primary', 'consumer', 'producer',
                     'scheduler', 'proxy'])[1 + (i * 7) % 8],
              (ARRAY['checkout', 'billing', 'inventory', 'analytics', 'auth', 'catalog',
                     'shipping', 'reporting'])[1 + (i * 3) % 8],
              (SELECT name FROM zones WHERE id = 1 + i % 6)),
       (SELECT name FROM zones WHERE id = 1 + i % 6),
       (i % 6) * 8 + 1 + (i / 6) % 7,
       (ARRAY[1, 2, 2, 4, 4, 8, 16, 32])[1 + (i * 5) % 8],
       (ARRAY[512, 1024, 2048, 4096, 8192, 16384, 32768, 65536])[1 + (i * 5) % 8],
       (ARRAY[20, 40, 80, 160])[1 + i % 4],
       CASE WHEN random() < 0.7 THEN 'running' WHEN random() < 0.9 THEN 'stopped'
            ELSE 'paused' END,
       ARRAY[(ARRAY['prod', 'staging', 'dev'])[1 + i % 3]],
       now() - make_interval(days => 1 + i % 90),
       now() - make_interval(mins => i % 1440)
FROM generate_series(1, :vms) AS i;

SELECT setval(pg_get_serial_sequence('vms', 'id'), greatest((SELECT max(id) FROM vms), 1));

-- historical migrations: one per 5 VMs, 95% completed
INSERT INTO migrations (vm_id, source_zone, target_zone, state, phase, progress, duration_ms,
                        error, bytes_transferred, created_at, finished_at)
SELECT v.id, v.zone,
       (SELECT name FROM zones WHERE id = 1 + (v.id + 1) % 6),
       CASE WHEN random() < 0.95 THEN 'completed' ELSE 'failed' END,
       'completed', 100, 5000 + (random() * 25000)::int, NULL,
       (v.memory_mb::bigint * 1048576 * (1 + random())),
       now() - make_interval(hours => 1 + (v.id % 240)::int),
       now() - make_interval(hours => 1 + (v.id % 240)::int) + interval '30 seconds'
FROM vms v WHERE v.id % 5 = 0;
UPDATE migrations SET phase = 'failed', progress = 40 + (id % 50)::int,
       error = 'dirty page rate exceeded link bandwidth' WHERE state = 'failed';

-- 12 metric samples per VM, 5 minutes apart
INSERT INTO metrics (vm_id, ts, cpu_pct, mem_pct, net_rx_kbps, net_tx_kbps)
SELECT v.id, now() - make_interval(mins => 5 * s),
       (random() * 100)::real, (20 + random() * 75)::real,
       (random() * 10000)::real, (random() * 10000)::real
FROM vms v CROSS JOIN generate_series(0, 11) AS s;

-- 3 events per VM
INSERT INTO events (vm_id, kind, severity, message, created_at)
SELECT v.id,
       (ARRAY['created', 'started', 'stopped', 'snapshot', 'alert'])[1 + (v.id + e) % 5],
       (ARRAY['info', 'info', 'info', 'warning', 'critical'])[1 + (v.id * e) % 5],
       format('vm %s %s', v.name,
              (ARRAY['created', 'started', 'stopped', 'snapshot taken',
                     'cpu above 90%'])[1 + (v.id + e) % 5]),
       now() - make_interval(mins => ((v.id * 7 + e * 131) % 10000)::int)
FROM vms v CROSS JOIN generate_series(1, 3) AS e;

# 025_document_churn.pl: documents built from related tables converge
# under churn.  A product document includes its brand and embeds its three
# best reviews; an order document embeds its lines, each including its
# product and the product's brand (three levels).  Four clients change
# every table for 30 seconds (brands renamed and their keys changed,
# cascading to products; products renamed and moved to other brands;
# reviews and lines added, changed, moved to other parents and deleted),
# and the delivery worker is killed (kill -9) in the middle.  At the end
# every store holds the documents as the tables make them: verify finds no
# drift on any route (Redis json, MongoDB, Elasticsearch, OpenSearch), and
# Redis read back key by key equals documents computed here by other SQL.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PolyglotTest;

my $redis_port = $ENV{REDIS_PORT} or die "REDIS_PORT is not set";
my $mongo_uri = $ENV{MONGO_URI} or die "MONGO_URI is not set";
my $es_url = $ENV{ELASTICSEARCH_URL} or die "ELASTICSEARCH_URL is not set";
my $os_url = $ENV{OPENSEARCH_URL} or die "OPENSEARCH_URL is not set";
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $db = 'postgres';
my $index = 'polyglot_tap_document_churn';

system("redis-cli -p $redis_port --scan --pattern 'tapd:*' | xargs -r redis-cli -p $redis_port DEL >/dev/null");
PolyglotTest::mongo_tool($mongo_uri, 'drop', 'polyglot_tap', $_) for ('doc_products', 'doc_orders');
system('curl', '-s', '-m', '60', '-o', '/dev/null', '-XDELETE', "$_/$index?ignore_unavailable=true")
  for ($es_url, $os_url);

my $product_doc = '"include": {"brand": {"table": "brands", "columns": ["name"]}}, '
  . '"embed": {"reviews": {"table": "reviews", "columns": ["stars", "body"], "order_by": "stars DESC, id", "limit": 3}}';
my $order_doc = '"embed": {"lines": {"table": "lines", "columns": ["id", "qty"], "order_by": "id", '
  . '"include": {"product": {"table": "products", "columns": ["name"], '
  . '"include": {"brand": {"table": "brands", "columns": ["name"]}}}}}}';

my $node = preloaded_node('document_churn', "polyglot.workers = 2\n");
$node->safe_psql($db, qq{
CREATE EXTENSION pg_polyglot;
CREATE SERVER cache FOREIGN DATA WRAPPER polyglot_redis OPTIONS (host '127.0.0.1', port '$redis_port');
CREATE SERVER docs FOREIGN DATA WRAPPER polyglot_mongo OPTIONS (uri '$mongo_uri', database 'polyglot_tap');
CREATE SERVER es FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$es_url');
CREATE SERVER os FOREIGN DATA WRAPPER polyglot_elastic OPTIONS (url '$os_url');
CREATE TABLE brands (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL,
                       brand_id int REFERENCES brands ON UPDATE CASCADE);
CREATE TABLE reviews (id int PRIMARY KEY, product_id int REFERENCES products, stars int NOT NULL, body text);
CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL);
CREATE TABLE lines (id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders,
                    product_id int NOT NULL REFERENCES products, qty int NOT NULL);
CREATE INDEX ON products (brand_id);
CREATE INDEX ON reviews (product_id);
CREATE INDEX ON lines (order_id);
CREATE INDEX ON lines (product_id);
INSERT INTO brands SELECT g, 'brand ' || g FROM generate_series(1, 20) g;
INSERT INTO products SELECT g, 'product ' || g, CASE WHEN g % 10 <> 0 THEN g % 20 + 1 END
  FROM generate_series(1, 400) g;
INSERT INTO reviews SELECT g, g % 400 + 1, g % 5 + 1, 'review ' || g FROM generate_series(1, 1500) g;
INSERT INTO orders SELECT g, 'customer ' || g FROM generate_series(1, 200) g;
INSERT INTO lines SELECT g, g % 200 + 1, g * 7 % 400 + 1, g % 4 + 1 FROM generate_series(1, 800) g;
SELECT polyglot.sync('products', 'cache', '{"key": "tapd:p:{id}", $product_doc}');
SELECT polyglot.sync('orders', 'cache', '{"key": "tapd:o:{id}", $order_doc}');
SELECT polyglot.sync('products', 'docs', '{"collection": "doc_products", $product_doc}');
SELECT polyglot.sync('orders', 'docs', '{"collection": "doc_orders", $order_doc}');
SELECT polyglot.sync('products', 'es', '{"index": "$index", $product_doc}');
SELECT polyglot.sync('products', 'os', '{"index": "$index", $product_doc}');
});
ok(wait_drained($node, $db, 120), 'the backfills are delivered');

# the churn: each transaction changes a row or two of one table
open my $fh, '>', "$tmp/churn.sql" or die;
print $fh <<'EOF';
\set b random(1, 20)
\set p random(1, 400)
\set p2 random(1, 400)
\set o random(1, 200)
\set r random(1, 2000)
\set l random(1, 1000)
\set what random(1, 12)
BEGIN;
UPDATE brands SET name = name || '.' WHERE id IN (:b, :b + 1000) AND :what = 1;
UPDATE brands SET id = CASE WHEN id > 1000 THEN id - 1000 ELSE id + 1000 END
 WHERE id IN (:b, :b + 1000) AND :what = 2;
UPDATE products SET name = name || '.' WHERE id = :p AND :what = 3;
UPDATE products SET brand_id = (SELECT id FROM brands WHERE id IN (:b, :b + 1000))
 WHERE id = :p AND :what = 4;
INSERT INTO reviews SELECT :r, :p, :r % 5 + 1, 'new' WHERE :what = 5
  ON CONFLICT (id) DO UPDATE SET stars = reviews.stars % 5 + 1;
UPDATE reviews SET product_id = :p2 WHERE id = :r AND :what = 6;
DELETE FROM reviews WHERE id = :r AND :what = 7;
INSERT INTO lines SELECT :l, :o, :p, 1 WHERE :what = 8
  ON CONFLICT (id) DO UPDATE SET qty = lines.qty + 1;
UPDATE lines SET order_id = :o WHERE id = :l AND :what = 9;
UPDATE lines SET product_id = :p2 WHERE id = :l AND :what = 10;
DELETE FROM lines WHERE id = :l AND :what = 11;
UPDATE orders SET customer = customer || '.' WHERE id = :o AND :what = 12;
COMMIT;
EOF
close $fh;
# (deadlocks between a brand's cascade and a product's update are retried)
my $churn = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '4', '-T', '30', '-R', '200', '--max-tries', '20', '-f', "$tmp/churn.sql",
		'-h', $node->host, '-p', $node->port, $db ],
	'>', "$tmp/pgbench.out", '2>', "$tmp/pgbench.err");

# the worker is killed in the middle of it; the postmaster restarts
# everything and the launcher brings the workers back
sleep 12;
my $pid = worker_pid($node, $db);
ok($pid > 0, 'a worker runs during the churn');
kill 'KILL', $pid;
ok(wait_until(sub { $node->safe_psql($db, 'SELECT 1') eq '1' }, 60), 'the server is back after the kill');
$churn->finish;
ok(-s "$tmp/pgbench.out", 'the churn ran');
note(slurp_file("$tmp/pgbench.out"));
ok(wait_until(sub { worker_pid($node, $db) > 0 }, 60), 'a worker runs again');
# (more writes after the crash restart, in case the kill cut the churn short)
$node->safe_psql($db, q{
UPDATE brands SET name = name || '!' WHERE id % 3 = 0;
UPDATE reviews SET product_id = product_id % 400 + 1 WHERE id % 13 = 0;
UPDATE lines SET product_id = product_id % 400 + 1 WHERE id % 11 = 0;
});
ok(wait_drained($node, $db, 240), 'every route caught up after the churn');

is($node->safe_psql($db,
	"SELECT string_agg(r.name || ':' || (SELECT count(*) FROM polyglot.verify(r.id)), ' ' ORDER BY r.name) "
	  . "FROM polyglot.routes r"),
	'orders@cache:0 orders@docs:0 products@cache:0 products@docs:0 products@es:0 products@os:0',
	'verify finds no drift on any route');

# Redis, read back key by key, against documents computed by other SQL
# (compared as jsonb: the same values whatever the order of object keys)
my %expected = (
	'tapd:p:' => q{SELECT 'tapd:p:' || p.id, to_jsonb(p) || jsonb_build_object(
	    'brand', (SELECT jsonb_build_object('name', b.name) FROM brands b WHERE b.id = p.brand_id),
	    'reviews', coalesce((SELECT jsonb_agg(jsonb_build_object('stars', r.stars, 'body', r.body)
	                                          ORDER BY r.stars DESC, r.id)
	                         FROM (SELECT * FROM reviews r WHERE r.product_id = p.id
	                               ORDER BY r.stars DESC, r.id LIMIT 3) r), '[]'))
	  FROM products p},
	'tapd:o:' => q{SELECT 'tapd:o:' || o.id, to_jsonb(o) || jsonb_build_object(
	    'lines', coalesce((SELECT jsonb_agg(jsonb_build_object('id', l.id, 'qty', l.qty,
	        'product', (SELECT jsonb_build_object('name', p.name,
	            'brand', (SELECT jsonb_build_object('name', b.name) FROM brands b WHERE b.id = p.brand_id))
	          FROM products p WHERE p.id = l.product_id)) ORDER BY l.id)
	      FROM lines l WHERE l.order_id = o.id), '[]'))
	  FROM orders o});
for my $prefix (sort keys %expected)
{
	my $store = redis_dump($redis_port, $prefix, $tmp);
	my $rows = $node->safe_psql($db, "SELECT count(*) FROM ($expected{$prefix}) x");
	# both sides through jsonb, in one query
	open my $out, '>', "$tmp/store.tsv" or die;
	print $out "$_\t$store->{$_}\n" for sort keys %$store;
	close $out;
	my $diff = $node->safe_psql($db, qq{
CREATE TEMP TABLE store (k text, d jsonb);
\\copy store FROM '$tmp/store.tsv'
SELECT count(*) FROM ($expected{$prefix}) e(k, d) FULL JOIN store s ON s.k = e.k
 WHERE e.d IS DISTINCT FROM s.d;
});
	is($diff, '0', "Redis documents $prefix* equal the documents computed from the tables ("
		  . scalar(keys %$store) . " keys, $rows rows)");
}
my ($moved, $keyed) = split /\|/, $node->safe_psql($db,
	"SELECT (SELECT count(*) FROM brands WHERE id > 1000), (SELECT count(*) FROM products WHERE brand_id > 1000)");
note("brands whose key changed: $moved, products of those: $keyed");
is($node->safe_psql($db, 'SELECT sum(failed) FROM polyglot.status'), '0', 'no event was given up');

$node->stop;
done_testing();

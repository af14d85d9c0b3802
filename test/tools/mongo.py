#!/usr/bin/env python3
"""A MongoDB client for the tests, independent of pg_polyglot: pymongo.

Usage (the server is $MONGO_URI):
  mongo.py dump DB COLL         every document, sorted by _id, as canonical
                                Extended JSON (types visible: $numberInt,
                                $numberDecimal, $date...), one per line
  mongo.py count DB COLL        the number of documents
  mongo.py drop DB [COLL]       drop a collection, or the whole database
  mongo.py insert DB COLL JSON  insert documents given as an Extended JSON
                                array
  mongo.py seed DB COLL N       insert N generated documents (_id 1..N, the
                                same every time) for the foreign table tests
"""
import os
import sys

from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS
from pymongo import MongoClient


def main(argv):
    client = MongoClient(os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017"),
                         serverSelectionTimeoutMS=5000)
    cmd, db = argv[1], client[argv[2]]
    if cmd == "dump":
        for doc in db[argv[3]].find().sort("_id", 1):
            print(json_util.dumps(doc, json_options=CANONICAL_JSON_OPTIONS, sort_keys=False))
    elif cmd == "count":
        print(db[argv[3]].count_documents({}))
    elif cmd == "drop":
        if len(argv) > 3:
            db.drop_collection(argv[3])
        else:
            client.drop_database(argv[2])
    elif cmd == "insert":
        docs = json_util.loads(argv[4])
        if docs:
            db[argv[3]].insert_many(docs)
    elif cmd == "seed":
        n = int(argv[4])
        cities = ["Lyon", "Oslo", "Kyiv", "Lima", "Pune", "Baku", "Graz"]
        docs = []
        for i in range(1, n + 1):
            doc = {"_id": i, "name": "item %05d" % i, "qty": i % 100,
                   "price": (i % 1000) / 4.0, "city": cities[i % 7],
                   "active": i % 3 == 0, "tags": ["t%d" % (i % 5), "t%d" % (i % 11)],
                   "dims": {"w": i % 13, "h": i % 17}}
            if i % 10 == 0:
                doc["note"] = None
            elif i % 10 != 5:
                doc["note"] = "note %d" % (i % 9)
            docs.append(doc)
            if len(docs) == 1000:
                db[argv[3]].insert_many(docs)
                docs = []
        if docs:
            db[argv[3]].insert_many(docs)
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)

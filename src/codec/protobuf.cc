// The only C++ in the Protobuf path: libprotobuf's .proto parser and descriptor pool behind the C API of
// codec/protobuf.h. This file owns turning text (or a base64 FileDescriptorProto) and its imports into descriptors
// and lowering those into the C model; compatibility and decoding are C on that model. No exception crosses into C:
// every entry point catches, and libprotobuf reports parse and build errors through collectors, not exceptions.
#include <google/protobuf/compiler/parser.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

extern "C" {
#include "codec/protobuf.h"
}

namespace gp = google::protobuf;

namespace {

// Keeps the first error protoc reports, with its position.
struct first_error : gp::io::ErrorCollector {
	std::string msg;
	void AddError(int line, gp::io::ColumnNumber col, const std::string &m) override
	{
		if (msg.empty())
			msg = "line " + std::to_string(line + 1) + ":" + std::to_string(col + 1) + ": " + m;
	}
};

struct pool_error : gp::DescriptorPool::ErrorCollector {
	std::string msg;
	void AddError(const std::string &file, const std::string &element, const gp::Message *, ErrorLocation,
		      const std::string &m) override
	{
		if (msg.empty())
			msg = file + ": " + (element.empty() ? "" : element + ": ") + m;
	}
};

// Every block the C model points into; freed together.
struct arena {
	std::vector<void *> blocks;
	~arena()
	{
		for (void *p : blocks)
			free(p);
	}
	template <class T> T *alloc(size_t n)
	{
		void *p = calloc(n ? n : 1, sizeof(T));
		if (!p)
			throw std::bad_alloc();
		blocks.push_back(p);
		return static_cast<T *>(p);
	}
	char *str(const std::string &s)
	{
		char *p = alloc<char>(s.size() + 1);
		memcpy(p, s.data(), s.size());
		return p;
	}
};

struct owner {
	arena a;
	gp::DescriptorPool pool;
	std::map<const gp::Descriptor *, sl_pb_msg *> msgs;
	std::map<const gp::EnumDescriptor *, sl_pb_enum *> enums;
	std::map<std::string, const char *> origins; // file name -> origin label
};

const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool b64_decode(const char *s, size_t n, std::string &out)
{
	unsigned v = 0;
	int bits = 0;
	size_t data = 0;
	for (size_t i = 0; i < n; i++) {
		const char *p;
		if (s[i] == '=') {
			for (size_t k = i; k < n; k++)
				if (s[k] != '=')
					return false;
			break;
		}
		if (!s[i] || !(p = strchr(B64, s[i])))
			return false;
		v = (v << 6) | (unsigned)(p - B64);
		bits += 6;
		data++;
		if (bits >= 8) {
			bits -= 8;
			out.push_back((char)((v >> bits) & 0xFF));
		}
	}
	return data > 0;
}

std::string b64_encode(const std::string &in)
{
	std::string out;
	size_t i = 0;
	for (; i + 2 < in.size(); i += 3) {
		unsigned v = ((unsigned char)in[i] << 16) | ((unsigned char)in[i + 1] << 8) | (unsigned char)in[i + 2];
		out += B64[v >> 18];
		out += B64[(v >> 12) & 63];
		out += B64[(v >> 6) & 63];
		out += B64[v & 63];
	}
	if (i + 1 == in.size()) {
		unsigned v = (unsigned char)in[i] << 16;
		out += B64[v >> 18];
		out += B64[(v >> 12) & 63];
		out += "==";
	} else if (i + 2 == in.size()) {
		unsigned v = ((unsigned char)in[i] << 16) | ((unsigned char)in[i + 1] << 8);
		out += B64[v >> 18];
		out += B64[(v >> 12) & 63];
		out += B64[(v >> 6) & 63];
		out += '=';
	}
	return out;
}

// .proto text first; a text that protoc rejects but that is base64 of a descriptor (what Confluent's clients
// register) is taken as that.
bool to_proto(const char *text, size_t len, const std::string &name, gp::FileDescriptorProto &fdp, std::string &why)
{
	size_t sp = 0;
	while (sp < len && strchr(" \t\r\n", text[sp]))
		sp++;
	if (sp == len) {
		why = "empty schema";
		return false;
	}
	gp::io::ArrayInputStream in(text, (int)len);
	first_error ec;
	gp::io::Tokenizer tok(&in, &ec);
	gp::compiler::Parser parser;
	parser.RecordErrorsTo(&ec);
	bool ok = parser.Parse(&tok, &fdp) && ec.msg.empty();
	if (!ok) {
		std::string bin;
		gp::FileDescriptorProto f2;
		size_t n = len;
		while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
			n--;
		if (b64_decode(text, n, bin) && f2.ParseFromString(bin) &&
		    (f2.message_type_size() || f2.enum_type_size() || f2.has_package() || f2.has_syntax())) {
			fdp = f2;
			ok = true;
		} else {
			why = ec.msg.empty() ? "not a .proto file" : ec.msg;
			return false;
		}
	}
	if (fdp.name().empty())
		fdp.set_name(name);
	return true;
}

struct builder {
	owner *o;
	std::map<std::string, gp::FileDescriptorProto> files;
	std::set<std::string> building;
	std::string why;

	const gp::FileDescriptor *build(const std::string &name, int depth)
	{
		const gp::FileDescriptor *fd = o->pool.FindFileByName(name);
		if (fd)
			return fd;
		if (depth > 64 || building.count(name)) {
			why = "import cycle through " + name;
			return nullptr;
		}
		gp::FileDescriptorProto fdp;
		auto it = files.find(name);
		if (it != files.end())
			fdp = it->second;
		else if (const gp::FileDescriptor *g = gp::DescriptorPool::generated_pool()->FindFileByName(name))
			g->CopyTo(&fdp);
		else {
			why = "import \"" + name + "\" is not among the schema's references";
			return nullptr;
		}
		building.insert(name);
		for (const std::string &d : fdp.dependency())
			if (!build(d, depth + 1))
				return nullptr;
		building.erase(name);
		pool_error ec;
		fd = o->pool.BuildFileCollectingErrors(fdp, &ec);
		if (!fd)
			why = ec.msg.empty() ? "invalid file " + name : ec.msg;
		return fd;
	}
};

enum sl_pb_label label_of(const gp::FieldDescriptor *f)
{
	if (f->is_required())
		return SL_PB_LABEL_REQUIRED;
	if (f->is_repeated())
		return SL_PB_LABEL_REPEATED;
	if (f->file()->syntax() == gp::FileDescriptor::SYNTAX_PROTO3)
		return f->has_optional_keyword() ? SL_PB_LABEL_OPTIONAL : SL_PB_LABEL_NONE;
	return SL_PB_LABEL_OPTIONAL;
}

sl_pb_enum *lower_enum(owner *o, const gp::EnumDescriptor *e)
{
	sl_pb_enum *out = o->a.alloc<sl_pb_enum>(1);
	out->name = o->a.str(e->name());
	out->full = o->a.str(e->full_name());
	out->nvals = (size_t)e->value_count();
	out->vnames = o->a.alloc<char *>(out->nvals);
	out->vnums = o->a.alloc<int>(out->nvals);
	for (int i = 0; i < e->value_count(); i++) {
		out->vnames[i] = o->a.str(e->value(i)->name());
		out->vnums[i] = e->value(i)->number();
	}
	o->enums[e] = out;
	return out;
}

sl_pb_msg *lower_msg(owner *o, const gp::Descriptor *d)
{
	sl_pb_msg *m = o->a.alloc<sl_pb_msg>(1);
	auto org = o->origins.find(d->file()->name());
	m->name = o->a.str(d->name());
	m->full = o->a.str(d->full_name());
	m->package = o->a.str(d->file()->package());
	m->origin = org != o->origins.end() ? org->second : nullptr;
	m->map_entry = d->options().map_entry();
	m->nfields = (size_t)d->field_count();
	m->fields = o->a.alloc<sl_pb_field>(m->nfields);
	for (int i = 0; i < d->field_count(); i++) {
		const gp::FieldDescriptor *f = d->field(i);
		sl_pb_field *x = &m->fields[i];
		x->name = o->a.str(f->name());
		x->number = f->number();
		x->label = label_of(f);
		x->type = (int)f->type();
		if (f->message_type())
			x->type_name = o->a.str(f->message_type()->full_name());
		else if (f->enum_type())
			x->type_name = o->a.str(f->enum_type()->full_name());
		x->oneof = f->real_containing_oneof() ? f->real_containing_oneof()->index() : -1;
		x->packed = f->is_packed();
	}
	m->noneofs = (size_t)d->real_oneof_decl_count();
	m->oneofs = o->a.alloc<char *>(m->noneofs);
	for (size_t i = 0; i < m->noneofs; i++)
		m->oneofs[i] = o->a.str(d->oneof_decl((int)i)->name());
	m->nnested = (size_t)d->nested_type_count();
	m->nested = o->a.alloc<sl_pb_msg *>(m->nnested);
	for (int i = 0; i < d->nested_type_count(); i++)
		m->nested[i] = lower_msg(o, d->nested_type(i));
	m->nenums = (size_t)d->enum_type_count();
	m->enums = o->a.alloc<sl_pb_enum *>(m->nenums);
	for (int i = 0; i < d->enum_type_count(); i++)
		m->enums[i] = lower_enum(o, d->enum_type(i));
	o->msgs[d] = m;
	return m;
}

void lower_file(owner *o, const gp::FileDescriptor *fd, std::set<const gp::FileDescriptor *> &seen,
		sl_pb_schema *s, bool main)
{
	if (!seen.insert(fd).second)
		return;
	for (int i = 0; i < fd->dependency_count(); i++)
		lower_file(o, fd->dependency(i), seen, s, false);
	std::vector<sl_pb_msg *> tops;
	std::vector<sl_pb_enum *> etops;
	for (int i = 0; i < fd->message_type_count(); i++)
		tops.push_back(lower_msg(o, fd->message_type(i)));
	for (int i = 0; i < fd->enum_type_count(); i++)
		etops.push_back(lower_enum(o, fd->enum_type(i)));
	if (main) {
		s->nmsgs = tops.size();
		s->msgs = o->a.alloc<sl_pb_msg *>(s->nmsgs);
		for (size_t i = 0; i < tops.size(); i++)
			s->msgs[i] = tops[i];
		s->nenums = etops.size();
		s->enums = o->a.alloc<sl_pb_enum *>(s->nenums);
		for (size_t i = 0; i < etops.size(); i++)
			s->enums[i] = etops[i];
	}
}

// libprotobuf logs warnings (a file without `syntax`, defaulted to proto2 as Confluent does) to stderr; the
// errors that matter come back through the collectors.
void quiet(gp::LogLevel, const char *, int, const std::string &)
{
}

} // namespace

extern "C" int sl_protobuf_parse(const char *text, size_t len, const struct sl_pb_dep *deps, size_t ndeps,
				 struct sl_pb_schema **out, struct sl_err *err)
{
	*out = nullptr;
	static bool quieted = (gp::SetLogHandler(quiet), true);
	(void)quieted;
	try {
		std::unique_ptr<owner> o(new owner);
		builder b;
		gp::FileDescriptorProto main;
		std::string why;
		b.o = o.get();
		for (size_t i = 0; i < ndeps; i++) {
			gp::FileDescriptorProto d;
			if (!to_proto(deps[i].text, strlen(deps[i].text), deps[i].name, d, why))
				return sl_err_set(err, SL_EINVAL, "reference '%s': %s", deps[i].name, why.c_str());
			// The reference's name is the import path, whatever name a serialized descriptor carried.
			d.set_name(deps[i].name);
			b.files[deps[i].name] = d;
			if (deps[i].origin)
				o->origins[deps[i].name] = o->a.str(deps[i].origin);
		}
		if (!to_proto(text, len, "sluice_schema.proto", main, why))
			return sl_err_set(err, SL_EINVAL, "%s", why.c_str());
		if (b.files.count(main.name()))
			main.set_name("sluice_schema.proto");
		b.files[main.name()] = main;
		const gp::FileDescriptor *fd = b.build(main.name(), 0);
		if (!fd)
			return sl_err_set(err, SL_EINVAL, "%s", b.why.c_str());
		sl_pb_schema *s = o->a.alloc<sl_pb_schema>(1);
		s->package = o->a.str(fd->package());
		s->syntax = o->a.str(fd->syntax() == gp::FileDescriptor::SYNTAX_PROTO3 ? "proto3" : "proto2");
		std::set<const gp::FileDescriptor *> seen;
		lower_file(o.get(), fd, seen, s, true);
		s->nall = o->msgs.size();
		s->all = o->a.alloc<sl_pb_msg *>(s->nall);
		size_t k = 0;
		for (auto &kv : o->msgs)
			s->all[k++] = kv.second;
		s->nallenums = o->enums.size();
		s->allenums = o->a.alloc<sl_pb_enum *>(s->nallenums);
		k = 0;
		for (auto &kv : o->enums)
			s->allenums[k++] = kv.second;
		for (auto &kv : o->msgs)
			for (size_t i = 0; i < kv.second->nfields; i++) {
				const gp::FieldDescriptor *f = kv.first->field((int)i);
				if (f->message_type())
					kv.second->fields[i].msg = o->msgs[f->message_type()];
				if (f->enum_type())
					kv.second->fields[i].en = o->enums[f->enum_type()];
			}
		gp::FileDescriptorProto canon;
		std::string bin;
		fd->CopyTo(&canon);
		canon.clear_name();
		canon.SerializeToString(&bin);
		s->serialized = o->a.str(b64_encode(bin));
		s->canonical = o->a.str(fd->DebugString());
		s->owner = o.release();
		*out = s;
		return 0;
	} catch (const std::bad_alloc &) {
		return sl_err_set(err, SL_ENOMEM, "out of memory parsing a Protobuf schema");
	} catch (const std::exception &e) {
		return sl_err_set(err, SL_EINVAL, "Protobuf schema: %s", e.what());
	}
}

extern "C" void sl_protobuf_free(struct sl_pb_schema *s)
{
	if (s)
		delete static_cast<owner *>(s->owner); // s itself lives in the arena
}

extern "C" struct sl_pb_msg *sl_protobuf_find(const struct sl_pb_schema *s, const char *full)
{
	if (full && *full == '.')
		full++;
	for (size_t i = 0; i < s->nall; i++)
		if (!strcmp(s->all[i]->full, full))
			return s->all[i];
	return nullptr;
}

extern "C" struct sl_pb_enum *sl_protobuf_find_enum(const struct sl_pb_schema *s, const char *full)
{
	if (full && *full == '.')
		full++;
	for (size_t i = 0; i < s->nallenums; i++)
		if (!strcmp(s->allenums[i]->full, full))
			return s->allenums[i];
	return nullptr;
}

extern "C" struct sl_pb_msg *sl_protobuf_by_index(const struct sl_pb_schema *s, const int *indexes, size_t n)
{
	struct sl_pb_msg *m = nullptr;
	if (!n || indexes[0] < 0 || (size_t)indexes[0] >= s->nmsgs)
		return nullptr;
	m = s->msgs[indexes[0]];
	for (size_t i = 1; i < n; i++) {
		if (indexes[i] < 0 || (size_t)indexes[i] >= m->nnested)
			return nullptr;
		m = m->nested[indexes[i]];
	}
	return m;
}
